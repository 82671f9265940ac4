// The OpenAI wire format: requests parsed and checked into longqa's terms, responses built as the
// official clients expect them (chat.completion, chat.completion.chunk, text_completion, embeddings,
// error objects), plus longqa's extension object. Pure functions; thread-safe. Bad requests raise
// longqa::Error with a message fit for a 400 response.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "qa/conversation.h"

namespace longqa::server {

using Json = nlohmann::ordered_json;

struct ChatRequest {
  std::vector<qa::Turn> history;  // turns before the question
  std::string question;           // the last user message
  std::optional<std::string> system;
  GenerateOptions generation;
  bool stream = false, include_usage = false;
  // "longqa": {"mode": "auto", "documents": [...], "index": true, "k": 5}
  bool longqa = false;
  qa::Mode mode = qa::Mode::Auto;
  std::vector<std::string> documents;
  bool use_index = false;
  std::optional<int64_t> k;
  std::optional<qa::ChunkOrder> chunk_order;
};

struct CompletionRequest {
  std::string prompt;
  GenerateOptions generation;
  bool stream = false, include_usage = false;
};

// default_max_tokens applies when the request names none.
ChatRequest parse_chat_request(const nlohmann::json& body, int64_t default_max_tokens);
CompletionRequest parse_completion_request(const nlohmann::json& body, int64_t default_max_tokens);
std::vector<std::string> parse_embedding_input(const nlohmann::json& body);

// The longqa extension answer: {"route": ..., "citations": [{"doc", "page", "chunk"}]}.
Json longqa_extension(const qa::AskResult& r);
Json usage(int64_t prompt_tokens, int64_t completion_tokens);
Json chat_completion(const std::string& id, const std::string& model, int64_t created, const qa::AskResult& r,
                     bool with_extension);
// One streamed chunk: a role, a piece of content, or the finish reason (the others empty).
Json chat_chunk(const std::string& id, const std::string& model, int64_t created, const std::string& role,
                const std::string& content, const std::string& finish_reason);
Json text_completion(const std::string& id, const std::string& model, int64_t created, const GenerateResult& r);
Json text_chunk(const std::string& id, const std::string& model, int64_t created, const std::string& text,
                const std::string& finish_reason);
Json error_body(const std::string& message, const std::string& type, int code);

// Standard base64 (RFC 4648) of raw bytes: embeddings with "encoding_format": "base64" are float32
// little-endian, as the official clients decode them.
std::string base64(std::string_view bytes);

// Serialised for the wire: invalid UTF-8 (a model can emit a partial character) becomes U+FFFD.
std::string dump(const Json& j);

}  // namespace longqa::server
