// Server — longqa over HTTP, compatible with the OpenAI API (chat and text completions, streaming by
// server-sent events, embeddings, models) plus /health, /metrics (Prometheus text), /tokenize,
// /detokenize and /v1/documents, and longqa's extension object on chat completions (documents or
// the server's index; route and citations in the answer). `parallel` slots each hold a Session and
// its prompt cache; requests beyond them wait for one. A client that disconnects mid-stream cancels
// its generation. Binds to 127.0.0.1 unless told otherwise; with an API key every route but /health
// requires "Authorization: Bearer KEY". Thread-safe: requests are served from a thread pool.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "kernels/cpu/dot.h"
#include "util/mapped_file.h"

namespace longqa::server {

struct ServerOptions {
  std::string model;
  std::optional<std::string> embed_model;  // /v1/embeddings and dense retrieval; default: the chat model
  std::optional<std::string> index;        // the server's index: "longqa": {"index": true}, /v1/documents
  std::string host = "127.0.0.1";
  int port = 8080;                         // 0: any free port
  std::optional<std::string> api_key;
  int parallel = 1;                        // slots: sequences decoded at once
  int64_t context = 8192;                  // positions per slot
  int threads = 0;                         // compute threads in all (0: all hardware threads)
  kernels::WType kv_type = kernels::WType::F16;
  FileResidency weights = FileResidency::HugePages;  // the chat model's (see MappedFile)
  size_t max_body_bytes = size_t{8} << 20;
  int64_t default_max_tokens = 512;
};

class Server {
 public:
  explicit Server(ServerOptions options);  // loads the model(s); throws Error on bad options or files
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, calls on_listening(port), and serves until stop() is called.
  void run(const std::function<void(int port)>& on_listening);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace longqa::server
