#include "server/server.h"

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "engine/model.h"
#include "qa/conversation.h"
#include "retrieval/embedder.h"
#include "retrieval/index.h"
#include "server/openai_api.h"
#include "util/error.h"
#include "util/sha256.h"

namespace longqa::server {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string(prefix) + hex;
}

void send_json(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  const char* type = status == 401 ? "authentication_error" : status >= 500 ? "server_error" : "invalid_request_error";
  send_json(res, status, error_body(message, type, status));
}

// Requests are answered by slots; each holds a Session and what its cache holds.
class SlotPool {
 public:
  explicit SlotPool(size_t n) : slots_(n), busy_(n, false) {}

  class Lease {
   public:
    Lease(SlotPool& pool, size_t i) : pool_(&pool), i_(i) {}
    Lease(Lease&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), i_(o.i_) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_) pool_->release(i_);
    }
    qa::PromptCache& cache() { return pool_->slots_[i_]; }

   private:
    SlotPool* pool_;
    size_t i_;
  };

  Lease acquire() {
    std::unique_lock lock(mutex_);
    free_.wait(lock, [&] { return std::find(busy_.begin(), busy_.end(), false) != busy_.end(); });
    const size_t i = static_cast<size_t>(std::find(busy_.begin(), busy_.end(), false) - busy_.begin());
    busy_[i] = true;
    return Lease(*this, i);
  }
  size_t busy() {
    const std::lock_guard lock(mutex_);
    return static_cast<size_t>(std::count(busy_.begin(), busy_.end(), true));
  }

 private:
  void release(size_t i) {
    {
      const std::lock_guard lock(mutex_);
      busy_[i] = false;
    }
    free_.notify_one();
  }
  std::vector<qa::PromptCache> slots_;
  std::vector<bool> busy_;
  std::mutex mutex_;
  std::condition_variable free_;
};

struct Metrics {
  std::atomic<int64_t> requests{0}, errors{0}, cancelled{0}, prompt_tokens{0}, completion_tokens{0}, in_flight{0};
};

// Counts a request in flight for its lifetime.
struct InFlight {
  explicit InFlight(Metrics& m) : m_(m) { ++m_.in_flight; }
  ~InFlight() { --m_.in_flight; }
  Metrics& m_;
};

}  // namespace

struct Server::Impl {
  ServerOptions o;
  std::unique_ptr<Model> model;
  std::string model_id;
  std::unique_ptr<retrieval::Embedder> embedder;  // made on the first /v1/embeddings request
  std::mutex embedder_mutex, index_mutex;
  SlotPool slots;
  Metrics metrics;
  httplib::Server http;
  int slot_threads;

  explicit Impl(ServerOptions options)
      : o(std::move(options)),
        slots(static_cast<size_t>(std::max(1, o.parallel))),
        slot_threads(std::max(1, (o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency())) /
                                     std::max(1, o.parallel))) {
    if (o.parallel < 1) throw Error("--parallel must be at least 1");
    if (o.context < 16) throw Error("--ctx must be at least 16");
    model = Model::load(o.model, {.rope = {}, .weights = o.weights});
    o.context = std::min(o.context, model->config().context_length);
    model_id = fs::path(o.model).filename().string();
    if (o.index) retrieval::Index(*o.index, retrieval::Index::Mode::Write);  // create it if new, check it opens
    routes();
  }

  qa::AskOptions ask_options(const ChatRequest& req) const {
    qa::AskOptions a;
    a.generation = req.generation;
    a.max_context = o.context;
    a.long_budget = o.context;
    a.kv_type = o.kv_type;
    a.threads = slot_threads;
    if (req.system) a.system = *req.system;
    a.instruction.clear();  // ChatQA's instruction goes with document questions only
    if (req.longqa) {
      a.mode = req.mode;
      a.docs = req.documents;
      if (req.use_index) {
        if (!o.index) throw Error("the server has no index (start it with --index DIR)");
        a.index = o.index;
      }
      if (req.k) a.k = *req.k;
      a.chunk_order = req.chunk_order;
      if (!a.docs.empty() || a.index) a.instruction = qa::kChatQaInstruction;
      a.embed_model = o.embed_model;
    }
    return a;
  }

  bool authorised(const httplib::Request& req) const {
    if (!o.api_key) return true;
    return req.get_header_value("Authorization") == "Bearer " + *o.api_key;
  }

  static json parse_body(const httplib::Request& req) {
    json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) throw Error("the request body is not valid JSON");
    return body;
  }

  // Runs a handler, turning bad input into 400 and anything else into 500, as JSON.
  void guarded(httplib::Response& res, const std::function<void()>& handler) {
    ++metrics.requests;
    InFlight in_flight(metrics);
    try {
      handler();
    } catch (const Error& e) {
      ++metrics.errors;
      send_error(res, 400, e.what());
    } catch (const std::exception& e) {
      ++metrics.errors;
      send_error(res, 500, e.what());
    }
  }

  // Runs a streamed response's body; an error after the headers went out becomes an error event.
  void stream_guarded(httplib::DataSink& sink, const std::function<void()>& body) {
    try {
      body();
    } catch (const std::exception& e) {
      ++metrics.errors;
      send_event(sink, dump(error_body(e.what(), "server_error", 500)));
    }
    sink.done();
  }

  // Server-sent events: each Json as "data: ...\n\n"; returns false once the client has gone.
  static bool send_event(httplib::DataSink& sink, const std::string& data) {
    const std::string event = "data: " + data + "\n\n";
    return sink.is_writable() && sink.write(event.data(), event.size());
  }

  void chat(const httplib::Request& http_req, httplib::Response& res) {
    const ChatRequest req = parse_chat_request(parse_body(http_req), o.default_max_tokens);
    auto lease = std::make_shared<SlotPool::Lease>(slots.acquire());
    auto conv = std::make_shared<qa::Conversation>(*model, ask_options(req), req.history, &lease->cache());
    auto prepared = std::make_shared<qa::Conversation::Prepared>(conv->prepare(req.question));  // 400s happen here
    const std::string id = random_id("chatcmpl-");
    const int64_t created = unix_time();
    if (!req.stream) {
      const qa::AskResult r = conv->run(*prepared);
      metrics.prompt_tokens += r.prompt_tokens;
      metrics.completion_tokens += r.completion_tokens;
      send_json(res, 200, chat_completion(id, model_id, created, r, req.longqa));
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [this, lease, conv, prepared, req, id, created](size_t, httplib::DataSink& sink) {
      bool open = send_event(sink, dump(chat_chunk(id, model_id, created, "assistant", "", "")));
      stream_guarded(sink, [&] {
        const qa::AskResult r = conv->run(*prepared, [&](std::string_view text) {
          open = open && send_event(sink, dump(chat_chunk(id, model_id, created, "", std::string(text), "")));
          return open;  // a client that went away cancels the generation
        });
        metrics.prompt_tokens += r.prompt_tokens;
        metrics.completion_tokens += r.completion_tokens;
        if (!open) {
          ++metrics.cancelled;
          return;
        }
        Json last = chat_chunk(id, model_id, created, "", "", r.finish_reason);
        if (req.longqa) last["longqa"] = longqa_extension(r);
        send_event(sink, dump(last));
        if (req.include_usage) {
          Json u = chat_chunk(id, model_id, created, "", "", "");
          u["choices"] = Json::array();
          u["usage"] = usage(r.prompt_tokens, r.completion_tokens);
          send_event(sink, dump(u));
        }
        send_event(sink, "[DONE]");
      });
      return true;
    });
  }

  void completion(const httplib::Request& http_req, httplib::Response& res) {
    const CompletionRequest req = parse_completion_request(parse_body(http_req), 16);  // OpenAI's default
    std::vector<int32_t> ids = model->tokenizer().encode(req.prompt);
    const int32_t bos = model->config().bos_id;
    if (bos >= 0 && (ids.empty() || ids[0] != bos)) ids.insert(ids.begin(), bos);
    const int64_t need = static_cast<int64_t>(ids.size()) + req.generation.max_tokens;
    if (need > o.context)
      throw Error("the prompt of " + std::to_string(ids.size()) + " tokens and " + std::to_string(req.generation.max_tokens) +
                  " completion tokens exceed the context of " + std::to_string(o.context));
    auto lease = std::make_shared<SlotPool::Lease>(slots.acquire());
    qa::PromptCache& cache = lease->cache();
    if (!cache.session || cache.session->capacity() < need) {
      cache.session.reset();
      cache.tokens.clear();
      cache.session = std::make_unique<Session>(*model, SessionOptions{.context = o.context, .threads = slot_threads, .kv_type = o.kv_type});
    }
    const std::string id = random_id("cmpl-");
    const int64_t created = unix_time();
    if (!req.stream) {
      const qa::CachedGeneration g = qa::generate_cached(cache, ids, req.generation, {});
      metrics.prompt_tokens += g.result.prompt_tokens;
      metrics.completion_tokens += g.result.completion_tokens;
      send_json(res, 200, text_completion(id, model_id, created, g.result));
      return;
    }
    res.set_chunked_content_provider("text/event-stream", [this, lease, ids, req, id, created](size_t, httplib::DataSink& sink) {
      bool open = true;
      stream_guarded(sink, [&] {
        const qa::CachedGeneration g = qa::generate_cached(lease->cache(), ids, req.generation, [&](std::string_view text) {
          open = open && send_event(sink, dump(text_chunk(id, model_id, created, std::string(text), "")));
          return open;
        });
        metrics.prompt_tokens += g.result.prompt_tokens;
        metrics.completion_tokens += g.result.completion_tokens;
        if (!open) {
          ++metrics.cancelled;
          return;
        }
        send_event(sink, dump(text_chunk(id, model_id, created, "", g.result.finish_reason)));
        send_event(sink, "[DONE]");
      });
      return true;
    });
  }

  void embeddings(const httplib::Request& http_req, httplib::Response& res) {
    const json body = parse_body(http_req);
    const std::vector<std::string> inputs = parse_embedding_input(body);
    const std::string format = body.value("encoding_format", "float");
    if (format != "float" && format != "base64") throw Error("'encoding_format' must be float or base64");
    const std::lock_guard lock(embedder_mutex);
    if (!embedder) embedder = std::make_unique<retrieval::Embedder>(retrieval::EmbedderSpec{.model = o.embed_model.value_or(o.model)}, slot_threads);
    Json data = Json::array();
    int64_t tokens = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::vector<float> v = embedder->document(inputs[i]);
      tokens += static_cast<int64_t>(embedder->tokenizer().encode(inputs[i], false).size());
      Json item = {{"object", "embedding"}, {"index", i}};
      if (format == "float") {
        item["embedding"] = v;
      } else {
        item["embedding"] = base64(std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
      }
      data.push_back(std::move(item));
    }
    metrics.prompt_tokens += tokens;
    send_json(res, 200, {{"object", "list"}, {"data", data}, {"model", fs::path(o.embed_model.value_or(o.model)).filename().string()},
                         {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
  }

  void documents(const httplib::Request& http_req, httplib::Response& res) {
    if (!o.index) throw Error("the server has no index (start it with --index DIR)");
    const json body = parse_body(http_req);
    std::vector<std::string> paths;
    if (const auto p = body.find("paths"); p != body.end() && p->is_array())
      for (const json& x : *p) {
        if (!x.is_string()) throw Error("'paths' must be an array of strings");
        paths.push_back(x.get<std::string>());
      }
    if (const auto text = body.find("text"); text != body.end()) {
      if (!text->is_string() || text->get<std::string>().empty()) throw Error("'text' must be a non-empty string");
      // Text is kept as a file under the index, named by its content: re-posting it is a no-op.
      const std::string content = text->get<std::string>();
      const fs::path dir = fs::path(*o.index) / "uploads";
      fs::create_directories(dir);
      const std::string name = body.value("name", "");
      const fs::path file = dir / (sha256_hex(content).substr(0, 16) + (name.empty() ? "" : "-" + fs::path(name).filename().string()) + ".txt");
      std::ofstream(file, std::ios::binary) << content;
      paths.push_back(file.string());
    }
    if (paths.empty()) throw Error("give 'paths' (server-side files or directories) or 'text'");
    const std::lock_guard lock(index_mutex);
    retrieval::AddOptions add;
    add.embed_model = o.embed_model;
    add.tokenizer = o.embed_model ? std::nullopt : std::optional(o.model);
    add.threads = o.threads;
    const retrieval::AddReport r = retrieval::Index(*o.index, retrieval::Index::Mode::Write).add(paths, add);
    send_json(res, 200, {{"files_added", r.files_added}, {"files_updated", r.files_updated},
                         {"files_unchanged", r.files_unchanged}, {"chunks_added", r.chunks_added},
                         {"embedded", r.embedded}, {"problems", r.problems}});
  }

  std::string prometheus() {
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help, int64_t value) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
             std::to_string(value) + "\n";
    };
    metric("longqa_requests_total", "counter", "HTTP requests handled (all routes but /health and /metrics).", metrics.requests);
    metric("longqa_request_errors_total", "counter", "Requests answered with an error.", metrics.errors);
    metric("longqa_cancelled_total", "counter", "Generations cancelled by a client that disconnected.", metrics.cancelled);
    metric("longqa_prompt_tokens_total", "counter", "Prompt tokens processed.", metrics.prompt_tokens);
    metric("longqa_completion_tokens_total", "counter", "Tokens generated.", metrics.completion_tokens);
    metric("longqa_requests_in_flight", "gauge", "Requests being handled now.", metrics.in_flight);
    metric("longqa_slots_busy", "gauge", "Slots generating now.", static_cast<int64_t>(slots.busy()));
    metric("longqa_slots", "gauge", "Slots (--parallel).", o.parallel);
    return out;
  }

  void routes() {
    http.new_task_queue = [] { return new httplib::ThreadPool(64); };
    http.set_payload_max_length(o.max_body_bytes);
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (req.path == "/health" || authorised(req)) return httplib::Server::HandlerResponse::Unhandled;
      send_error(res, 401, "missing or wrong API key (Authorization: Bearer KEY)");
      return httplib::Server::HandlerResponse::Handled;
    });
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler's own error
      if (res.status == 404) send_error(res, 404, "no route " + req.method + " " + req.path);
      else if (res.status == 413) send_error(res, 413, "the request body is too large");
      else send_error(res, res.status, "HTTP error " + std::to_string(res.status));
    });
    auto post = [this](const char* path, void (Impl::*handler)(const httplib::Request&, httplib::Response&)) {
      http.Post(path, [this, handler](const httplib::Request& req, httplib::Response& res) {
        guarded(res, [&] { (this->*handler)(req, res); });
      });
    };
    post("/v1/chat/completions", &Impl::chat);
    post("/v1/completions", &Impl::completion);
    post("/v1/embeddings", &Impl::embeddings);
    post("/v1/documents", &Impl::documents);
    http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] {
        const json body = parse_body(req);
        if (!body.is_object() || !body.contains("content") || !body["content"].is_string()) throw Error("'content' must be a string");
        send_json(res, 200, {{"tokens", model->tokenizer().encode(body["content"].get<std::string>(), body.value("special", true))}});
      });
    });
    http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] {
        const json body = parse_body(req);
        if (!body.is_object() || !body.contains("tokens") || !body["tokens"].is_array()) throw Error("'tokens' must be an array of ids");
        std::vector<int32_t> ids;
        for (const json& t : body["tokens"]) {
          if (!t.is_number_integer()) throw Error("'tokens' must be an array of ids");
          ids.push_back(t.get<int32_t>());
        }
        send_json(res, 200, {{"content", model->tokenizer().decode(ids)}});
      });
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      Json data = Json::array({{{"id", model_id}, {"object", "model"}, {"created", unix_time()}, {"owned_by", "longqa"}}});
      if (o.embed_model)
        data.push_back({{"id", fs::path(*o.embed_model).filename().string()}, {"object", "model"}, {"created", unix_time()}, {"owned_by", "longqa"}});
      send_json(res, 200, {{"object", "list"}, {"data", data}});
    });
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) { send_json(res, 200, {{"status", "ok"}}); });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(prometheus(), "text/plain; version=0.0.4");
    });
  }
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Server::~Server() = default;

void Server::run(const std::function<void(int)>& on_listening) {
  Impl& i = *impl_;
  int port = i.o.port;
  if (port == 0) {
    port = i.http.bind_to_any_port(i.o.host);
    if (port < 0) throw Error("cannot bind to " + i.o.host);
  } else if (!i.http.bind_to_port(i.o.host, port)) {
    throw Error("cannot bind to " + i.o.host + ":" + std::to_string(port) + " (in use?)");
  }
  if (on_listening) on_listening(port);
  i.http.listen_after_bind();
}

void Server::stop() { impl_->http.stop(); }

}  // namespace longqa::server
