#include "eval/runner.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "eval/ruler.h"
#include "qa/chat_template.h"
#include "qa/conversation.h"
#include "retrieval/chunker.h"
#include "retrieval/store.h"
#include "util/error.h"
#include "util/sha256.h"

namespace longqa::eval {
using nlohmann::json;

namespace {

struct Task {
  int64_t index;
  std::string raw_prompt;        // RULER-prepared: the whole input, completed as is
  RulerSample sample;            // generated: asked through the Conversation
  std::vector<std::string> outputs;
  int64_t length = 0;
};

// str.format(context=..., input=...) on a template: only the template's own fields are replaced.
std::string format_prompt(const std::string& tmpl, const std::string& context, const std::string& input) {
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    if (tmpl.compare(i, 9, "{context}") == 0) {
      out += context;
      i += 9;
    } else if (tmpl.compare(i, 7, "{input}") == 0) {
      out += input;
      i += 7;
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

// The top-k BM25 chunks of a context for a query, in rank order, joined by blank lines.
std::string retrieve_chunks(const std::string& context, const std::string& query, const Tokenizer& tok, int64_t k,
                            int64_t chunk_tokens) {
  retrieval::Store store(":memory:", false);
  retrieval::LoadedFile f;
  f.path = "context";
  f.hash = sha256_hex(context);
  f.bytes = context.size();
  f.documents.push_back({"context", context, {}});
  const auto chunks = retrieval::chunk_document(f.documents[0], tok, {.chunk_tokens = chunk_tokens});
  {
    retrieval::Transaction t(store.db());
    store.put_file(f, {chunks});
    t.commit();
  }
  std::vector<int64_t> ids;
  for (const retrieval::Scored& s : store.bm25(query, k)) ids.push_back(s.id);
  std::string out;
  for (const retrieval::StoredChunk& c : store.chunks(ids)) out += (out.empty() ? "" : "\n\n") + c.text;
  return out;
}

std::string read_text_files(const std::vector<std::string>& files) {
  std::string text;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw Error(f + ": cannot open");
    text += std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()) + "\n";
  }
  return text;
}

// Indices of rows already in a predictions file (a torn last line from a killed run is redone).
std::set<int64_t> done_indices(const std::string& path) {
  std::set<int64_t> done;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const json row = json::parse(line, nullptr, false);
    if (row.is_object() && row.contains("index") && row["index"].is_number_integer() && row.contains("pred"))
      done.insert(row["index"].get<int64_t>());
  }
  return done;
}

// Makes cache.session hold at least `positions`.
Session& session_with(qa::PromptCache& cache, const Model& model, int64_t positions, const RunOptions& o) {
  if (!cache.session || cache.session->capacity() < positions) {
    cache.session.reset();
    cache.tokens.clear();
    cache.session = std::make_unique<Session>(
        model, SessionOptions{.context = std::min(positions, model.config().context_length), .threads = o.threads, .kv_type = o.kv_type});
  }
  return *cache.session;
}

RunReport run_longbench(const Model& model, const RunOptions& o, const std::string& dataset,
                        const std::function<void(int64_t, const std::string&, size_t, size_t)>& on_row) {
  if (o.data.empty()) throw Error("eval run: longbench needs --data DATASET.jsonl (the public LongBench file)");
  std::ifstream cfg_in(o.longbench_config);
  const json cfg = json::parse(cfg_in, nullptr, false);
  if (!cfg.is_object() || !cfg.contains("prompts")) throw Error(o.longbench_config + ": not the LongBench prompt configuration");
  if (!cfg["prompts"].contains(dataset)) throw Error("longbench:" + dataset + " is not one of the English LongBench datasets");
  const std::string tmpl = cfg["prompts"][dataset].get<std::string>();
  const int64_t max_new = cfg["max_new_tokens"][dataset].get<int64_t>();
  // pred.py: chat models are better off without the chat template on these.
  const bool raw = dataset == "trec" || dataset == "triviaqa" || dataset == "samsum" || dataset == "lcc" || dataset == "repobench-p";
  const Tokenizer& tok = model.tokenizer();
  const qa::Template chat = qa::detect_template(model);
  const std::string bos = model.config().bos_id >= 0 ? tok.token_text(model.config().bos_id) : "";
  const int64_t max_length = std::min(o.max_length, model.config().context_length - max_new - 64);

  std::ifstream in(o.data);
  if (!in) throw Error(o.data + ": cannot open");
  std::vector<json> rows;
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json row = json::parse(line, nullptr, false);
    const std::string where = o.data + ":" + std::to_string(line_no);
    if (!row.is_object() || !row.contains("context") || !row["context"].is_string() || !row.contains("input") ||
        !row["input"].is_string() || !row.contains("answers"))
      throw Error(where + ": a LongBench row needs 'context', 'input' and 'answers'");
    rows.push_back(std::move(row));
  }
  if (o.limit > 0 && static_cast<int64_t>(rows.size()) > o.limit) rows.resize(static_cast<size_t>(o.limit));
  const std::set<int64_t> done = done_indices(o.out);
  std::ofstream out(o.out, std::ios::app);
  if (!out) throw Error(o.out + ": cannot write");

  RunReport report;
  qa::PromptCache cache;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto index = static_cast<int64_t>(i);
    if (done.contains(index)) {
      ++report.already_done;
      continue;
    }
    const json& row = rows[i];
    const std::string input = row["input"].get<std::string>();
    std::string context = row["context"].get<std::string>(), route = "long";
    if (o.mode == qa::Mode::Rag || (o.mode == qa::Mode::Auto &&
                                    static_cast<int64_t>(tok.encode(format_prompt(tmpl, context, input), false).size()) > max_length)) {
      context = retrieve_chunks(context, input.empty() ? tmpl : input, tok, o.k, o.chunk_tokens);
      route = "rag";
    }
    std::string prompt = format_prompt(tmpl, context, input);
    // Middle truncation: keep the first and last max_length / 2 tokens (both ends hold instructions).
    std::vector<int32_t> ids = tok.encode(prompt, false);
    if (static_cast<int64_t>(ids.size()) > max_length) {
      const auto half = static_cast<size_t>(max_length / 2);
      prompt = tok.decode(std::span<const int32_t>(ids).first(half), true) + tok.decode(std::span<const int32_t>(ids).last(half), true);
    }
    if (!raw) {
      const qa::RenderedPrompt r = qa::render_prompt(chat, bos, qa::kChatQaSystem, "", {{"user", prompt}}, "");
      prompt = r.prefix + r.suffix;
    } else if (!bos.empty()) {
      prompt = bos + prompt;
    }
    ids = tok.encode(prompt, /*parse_special=*/true);
    session_with(cache, model, static_cast<int64_t>(ids.size()) + max_new, o);
    GenerateOptions g;
    g.max_tokens = max_new;
    for (const std::string& stop : qa::template_stops(chat))
      if (!raw) g.stop.push_back(stop);
    const std::string pred = qa::generate_cached(cache, ids, g, {}).result.text;
    json result = {{"index", index}, {"pred", pred}, {"answers", row["answers"]}, {"all_classes", row.value("all_classes", json())},
                   {"length", row.value("length", json())}, {"_id", row.value("_id", json())}, {"route", route}};
    out << result.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    out.flush();
    ++report.generated;
    if (on_row) on_row(index, pred, i + 1, rows.size());
  }
  return report;
}

}  // namespace

RunReport run_task(const Model& model, const RunOptions& o,
                   const std::function<void(int64_t, const std::string&, size_t, size_t)>& on_row) {
  const size_t colon = o.task.find(':');
  const std::string family = o.task.substr(0, colon), name = colon == std::string::npos ? "" : o.task.substr(colon + 1);
  if (family != "ruler" && family != "longbench")
    throw Error("eval run: --task " + o.task + ": longqa runs ruler:TASK and longbench:DATASET so far (InfiniteBench and ChatRAG prompts are not built yet)");
  if (o.out.empty()) throw Error("eval run: --out PREDS.jsonl is required");
  const Tokenizer& tok = model.tokenizer();

  if (family == "longbench") return run_longbench(model, o, name, on_row);

  // The samples, in order.
  std::vector<Task> tasks;
  if (!o.data.empty()) {
    if (o.mode != qa::Mode::Long) throw Error("eval run: a RULER-prepared file holds whole prompts; only --mode long applies");
    std::ifstream in(o.data);
    if (!in) throw Error(o.data + ": cannot open");
    size_t line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const json row = json::parse(line, nullptr, false);
      const std::string where = o.data + ":" + std::to_string(line_no);
      if (!row.is_object() || !row.contains("input") || !row["input"].is_string() || !row.contains("outputs") || !row["outputs"].is_array())
        throw Error(where + ": a RULER row needs 'input' and 'outputs'");
      Task t;
      t.index = row.value("index", static_cast<int64_t>(tasks.size()));
      t.raw_prompt = row["input"].get<std::string>();
      for (const json& v : row["outputs"]) t.outputs.push_back(v.is_string() ? v.get<std::string>() : v.dump());
      t.length = row.value("length", int64_t{-1});
      tasks.push_back(std::move(t));
    }
  } else {
    const std::string essay = read_text_files(o.haystack);
    for (int64_t i = 0; i < o.samples; ++i) {
      Task t;
      t.index = i;
      t.sample = make_ruler_sample(name, i, o.length, tok, essay);
      t.outputs = t.sample.outputs;
      t.length = t.sample.tokens;
      tasks.push_back(std::move(t));
    }
  }
  if (o.limit > 0 && static_cast<int64_t>(tasks.size()) > o.limit) tasks.resize(static_cast<size_t>(o.limit));

  const std::set<int64_t> done = done_indices(o.out);
  std::ofstream out(o.out, std::ios::app);
  if (!out) throw Error(o.out + ": cannot write");

  RunReport report;
  qa::PromptCache cache;
  const int64_t answer_tokens = name.empty() ? 128 : ruler_tokens_to_generate(name);
  for (size_t i = 0; i < tasks.size(); ++i) {
    const Task& t = tasks[i];
    if (done.contains(t.index)) {
      ++report.already_done;
      continue;
    }
    std::string pred, route = "long";
    if (!t.raw_prompt.empty()) {
      std::vector<int32_t> ids = tok.encode(t.raw_prompt);
      if (model.config().bos_id >= 0) ids.insert(ids.begin(), model.config().bos_id);
      session_with(cache, model, static_cast<int64_t>(ids.size()) + answer_tokens, o);
      GenerateOptions g;
      g.max_tokens = answer_tokens;
      pred = qa::generate_cached(cache, ids, g, {}).result.text;
    } else {
      qa::AskOptions a;
      a.texts.push_back({"context", t.sample.context, {}});
      a.mode = o.mode;
      // --length sizes the RULER prompt; the chat format around it adds a little. In long mode the whole
      // context goes in regardless; in auto mode the router compares the prompt with --length.
      a.long_budget = o.mode == qa::Mode::Long ? model.config().context_length : o.length;
      a.generation.max_tokens = answer_tokens;
      a.instruction = t.sample.before;  // RULER's instruction ("Some special magic numbers are hidden ...") opens the question
      a.kv_type = o.kv_type;
      a.threads = o.threads;
      qa::Conversation c(model, a, {}, &cache);
      const qa::AskResult r = c.ask(t.sample.question);
      pred = r.answer;
      route = qa::route_name(r.route);
    }
    out << json{{"index", t.index}, {"pred", pred}, {"outputs", t.outputs}, {"length", t.length}, {"route", route}}.dump(
               -1, ' ', false, json::error_handler_t::replace)
        << "\n";
    out.flush();
    ++report.generated;
    if (on_row) on_row(t.index, pred, i + 1, tasks.size());
  }
  return report;
}

}  // namespace longqa::eval
