#include "apps/ask_commands.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/model_args.h"
#include "engine/kv_cache.h"
#include "qa/conversation.h"
#include "server/server.h"
#include "util/error.h"

namespace longqa::apps {
using namespace qa;

struct AskCommandState {
  ModelArgs model;
  AskOptions options;
  std::vector<std::string> docs;
  std::string index, mode = "auto", chunk_order, template_name, embed_model, kv_cache_dir, kv_type = "f16", question, api_key;
  bool json = false;
  server::ServerOptions serve;
};

namespace {

AskOptions resolve(AskCommandState& s) {
  AskOptions o = s.options;
  o.docs = s.docs;
  if (!s.index.empty()) o.index = s.index;
  if (o.docs.empty() == s.index.empty()) throw Error("give documents (--doc) or an index (--index)");
  o.mode = parse_mode(s.mode);
  if (!s.chunk_order.empty()) o.chunk_order = parse_chunk_order(s.chunk_order);
  if (!s.template_name.empty()) o.chat_template = parse_template(s.template_name);
  if (!s.embed_model.empty()) o.embed_model = s.embed_model;
  if (!s.kv_cache_dir.empty()) o.kv_cache_dir = s.kv_cache_dir;
  o.kv_type = parse_kv_type(s.kv_type);
  o.threads = s.model.threads;
  if (o.generation.max_tokens < 1) throw Error("-n must be at least 1");
  return o;
}

nlohmann::ordered_json citations_json(const AskResult& r) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const Citation& c : r.citations)
    list.push_back({{"doc", c.doc},
                    {"page", c.page > 0 ? nlohmann::ordered_json(c.page) : nlohmann::ordered_json(nullptr)},
                    {"chunk", c.chunk >= 0 ? nlohmann::ordered_json(c.chunk) : nlohmann::ordered_json(nullptr)}});
  return list;
}

// One line on stderr after a streamed answer: the route, the tokens and the sources.
void report(const AskResult& r) {
  std::string sources;
  for (const Citation& c : r.citations) {
    sources += sources.empty() ? "" : "; ";
    sources += c.doc;
    if (c.page > 0) sources += " p." + std::to_string(c.page);
    if (c.chunk >= 0) sources += " #" + std::to_string(c.chunk);
  }
  std::fprintf(stderr, "[%s: %s | %lld prompt tokens (%lld reused), %lld generated | prefill %.2f s, decode %.2f s | sources: %s]\n",
               route_name(r.route), r.route_reason.c_str(), static_cast<long long>(r.prompt_tokens),
               static_cast<long long>(r.reused_tokens), static_cast<long long>(r.completion_tokens), r.prefill_seconds,
               r.decode_seconds, sources.c_str());
}

bool stream(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return true;
}

void cmd_ask(AskCommandState& s) {
  const AskOptions o = resolve(s);
  const auto model = s.model.load();
  Conversation c(*model, o);
  if (!s.json) {
    const AskResult r = c.ask(s.question, stream);
    std::printf("\n");
    report(r);
    return;
  }
  const AskResult r = c.ask(s.question);
  nlohmann::ordered_json j = {
      {"answer", r.answer},
      {"route", route_name(r.route)},
      {"citations", citations_json(r)},
      {"prompt_tokens", r.prompt_tokens},
      {"completion_tokens", r.completion_tokens},
      {"timings",
       {{"retrieval_s", r.retrieval_seconds}, {"prefill_s", r.prefill_seconds}, {"decode_s", r.decode_seconds},
        {"reused_prompt_tokens", r.reused_tokens}}},
      {"route_reason", r.route_reason},
      {"finish_reason", r.finish_reason},
      {"template", template_name(c.chat_template())}};
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

void cmd_chat(AskCommandState& s) {
  const AskOptions o = resolve(s);
  const auto model = s.model.load();
  Conversation c(*model, o);
  const bool tty = isatty(STDIN_FILENO) == 1;
  if (tty) std::fprintf(stderr, "longqa chat (%s template); an empty line or /exit ends it\n", template_name(c.chat_template()));
  std::string line;
  while (true) {
    if (tty) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line) || line == "/exit" || (tty && line.empty())) break;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const AskResult r = c.ask(line, stream);
    std::printf("\n");
    report(r);
  }
}

void add_shared(CLI::App* cmd, AskCommandState& s) {
  s.model.add(cmd);
  cmd->add_option("--doc", s.docs, "a document to ask about (repeatable)");
  cmd->add_option("--index", s.index, "an index directory to ask about");
  cmd->add_option("--mode", s.mode, "auto (whole text when it fits the budget, else retrieval), long or rag")->capture_default_str();
  cmd->add_option("--long-budget", s.options.long_budget, "tokens the whole-text route may use")->capture_default_str();
  cmd->add_option("--k", s.options.k, "chunks retrieved")->capture_default_str();
  cmd->add_option("--chunk-tokens", s.options.chunk_tokens,
                  "chunk size when retrieving from --doc files (default: 1200, or an eighth of a smaller context)");
  cmd->add_option("--chunk-order", s.chunk_order,
                  "best-first or best-last: where the best retrieved chunk goes (default: best-first, ChatQA's, for a window of 9,600 "
                  "positions or more; best-last, nearest the question, for a smaller one)");
  cmd->add_option("--retriever", s.options.retriever, "bm25, dense or hybrid (auto: hybrid when there are vectors)")->capture_default_str();
  cmd->add_option("--embed-model", s.embed_model, "with --doc: embed chunks for dense retrieval");
  cmd->add_option("--template", s.template_name, "chatqa, llama3, chatml or mistral (default: from the model)");
  cmd->add_option("--system", s.options.system, "the system line");
  cmd->add_option("--instruction", s.options.instruction, "prepended to the first question");
  cmd->add_option("-n,--max-tokens", s.options.generation.max_tokens, "answer tokens at most")->capture_default_str();
  cmd->add_option("--kv-cache-dir", s.kv_cache_dir, "persist the documents' KV cache here for later processes");
  cmd->add_option("--kv-type", s.kv_type, "KV cache type: f32, f16, bf16 or q8_0")->capture_default_str();
  cmd->add_option("--stop", s.options.generation.stop, "stop when this string is generated (repeatable)");
  add_sampling_options(cmd, s.options.generation.sampling);
}

void cmd_serve(AskCommandState& s) {
  server::ServerOptions o = s.serve;
  o.model = model_or_default(s.model.path);
  o.threads = s.model.threads;
  o.kv_type = parse_kv_type(s.kv_type);
  o.weights = residency(s.model.mmap);
  if (!s.embed_model.empty()) o.embed_model = s.embed_model;
  if (!s.index.empty()) o.index = s.index;
  if (!s.api_key.empty()) o.api_key = s.api_key;
  server::Server srv(o);
  srv.run([&](int port) {
    std::printf("longqa: serving %s on http://%s:%d (%d slots of %lld positions)\n", o.model.c_str(), o.host.c_str(), port,
                o.parallel, static_cast<long long>(o.context));
    std::fflush(stdout);
  });
}

}  // namespace

std::shared_ptr<AskCommandState> add_ask_commands(CLI::App& app) {
  auto s = std::make_shared<AskCommandState>();
  s->options.generation.max_tokens = 512;
  auto* ask = app.add_subcommand("ask", "answer a question about documents or an index (long context or RAG, chosen automatically)");
  add_shared(ask, *s);
  ask->add_flag("--json", s->json, "print one JSON object: answer, route, citations, token counts, timings");
  ask->add_option("question", s->question, "the question")->required();
  ask->callback([s] { cmd_ask(*s); });

  auto* chat = app.add_subcommand("chat", "a conversation about documents or an index, one question per line");
  add_shared(chat, *s);
  chat->callback([s] { cmd_chat(*s); });

  auto* serve = app.add_subcommand("serve", "an OpenAI-compatible HTTP server");
  serve->add_option("-m,--model", s->model.path, kModelHelp);
  serve->add_option("-t,--threads", s->model.threads, "compute threads in all (default: all)");
  add_mmap_flag(serve, s->model.mmap);
  serve->add_option("--embed-model", s->embed_model, "embedding model for /v1/embeddings and the index (default: the chat model)");
  serve->add_option("--index", s->index, "the server's index directory (created if new)");
  serve->add_option("--host", s->serve.host, "address to bind")->capture_default_str();
  serve->add_option("--port", s->serve.port, "port (0: any free port)")->capture_default_str();
  serve->add_option("--api-key", s->api_key, "require Authorization: Bearer KEY on every route but /health");
  serve->add_option("--parallel", s->serve.parallel, "sequences decoded at once")->capture_default_str();
  serve->add_option("--ctx", s->serve.context, "context positions per sequence")->capture_default_str();
  serve->add_option("--kv-type", s->kv_type, "KV cache type: f32, f16, bf16 or q8_0")->capture_default_str();
  serve->add_option("--max-body", s->serve.max_body_bytes, "largest request body in bytes")->capture_default_str();
  serve->callback([s] { cmd_serve(*s); });
  return s;
}

}  // namespace longqa::apps
