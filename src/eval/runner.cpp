#include "eval/runner.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "eval/ruler.h"
#include "qa/conversation.h"
#include "util/error.h"

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

std::string read_text_files(const std::vector<std::string>& files) {
  std::string text;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw Error(f + ": cannot open");
    text += std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()) + "\n";
  }
  return text;
}

}  // namespace

RunReport run_task(const Model& model, const RunOptions& o,
                   const std::function<void(int64_t, const std::string&, size_t, size_t)>& on_row) {
  const size_t colon = o.task.find(':');
  const std::string family = o.task.substr(0, colon), name = colon == std::string::npos ? "" : o.task.substr(colon + 1);
  if (family != "ruler")
    throw Error("eval run: --task " + o.task + ": longqa runs ruler:TASK so far (InfiniteBench, LongBench and ChatRAG prompts are not built yet)");
  if (o.out.empty()) throw Error("eval run: --out PREDS.jsonl is required");
  const Tokenizer& tok = model.tokenizer();

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

  // Rows already written (a torn last line from a killed run is ignored and redone).
  std::set<int64_t> done;
  {
    std::ifstream in(o.out);
    for (std::string line; std::getline(in, line);) {
      const json row = json::parse(line, nullptr, false);
      if (row.is_object() && row.contains("index") && row.contains("pred")) done.insert(row["index"].get<int64_t>());
    }
  }
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
      const int64_t need = static_cast<int64_t>(ids.size()) + answer_tokens;
      if (!cache.session || cache.session->capacity() < need) {
        cache.session.reset();
        cache.tokens.clear();
        cache.session = std::make_unique<Session>(model, SessionOptions{.context = std::min(need, model.config().context_length),
                                                                         .threads = o.threads, .kv_type = o.kv_type});
      }
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
