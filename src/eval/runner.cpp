#include "eval/runner.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <set>

#include "eval/ruler.h"
#include "eval/text_norm.h"
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

// str.format(**fields) on a template: only the template's own {name} fields are replaced, so braces
// in the values stay as they are.
std::string format_fields(const std::string& tmpl, const std::map<std::string, std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    bool replaced = false;
    if (tmpl[i] == '{')
      for (const auto& [name, value] : fields)
        if (tmpl.compare(i + 1, name.size() + 1, name + "}") == 0) {
          out += value;
          i += name.size() + 2;
          replaced = true;
          break;
        }
    if (!replaced) out += tmpl[i++];
  }
  return out;
}

std::string format_prompt(const std::string& tmpl, const std::string& context, const std::string& input) {
  return format_fields(tmpl, {{"context", context}, {"input", input}});
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

// The rows of a JSONL file (blank lines skipped), at most `limit` (0: all); check raises on a bad row.
std::vector<json> read_rows(const std::string& path, int64_t limit, const std::function<void(const json&, const std::string&)>& check) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open");
  std::vector<json> rows;
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json row = json::parse(line, nullptr, false);
    check(row, path + ":" + std::to_string(line_no));
    rows.push_back(std::move(row));
    if (limit > 0 && static_cast<int64_t>(rows.size()) == limit) break;
  }
  return rows;
}

// Appends produce(index)'s row for every index below count that the predictions file lacks.
RunReport write_predictions(const RunOptions& o, size_t count, const std::function<json(int64_t)>& produce,
                            const std::function<void(int64_t, const std::string&, size_t, size_t)>& on_row) {
  const std::set<int64_t> done = done_indices(o.out);
  std::ofstream out(o.out, std::ios::app);
  if (!out) throw Error(o.out + ": cannot write");
  RunReport report;
  for (size_t i = 0; i < count; ++i) {
    const auto index = static_cast<int64_t>(i);
    if (done.contains(index)) {
      ++report.already_done;
      continue;
    }
    json row = produce(index);
    row["index"] = index;
    out << row.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    out.flush();  // a killed run keeps every finished row
    ++report.generated;
    if (on_row) on_row(index, row.value("pred", row.value("prediction", std::string())), i + 1, count);
  }
  return report;
}

// A benchmark's prompt template and answer length from its vendored configuration (data/eval/*.json).
struct PromptConfig {
  std::string tmpl;
  int64_t max_new = 0;
};
PromptConfig load_prompt_config(const std::string& path, const std::string& family, const std::string& name, const char* what) {
  std::ifstream in(path);
  const json cfg = json::parse(in, nullptr, false);
  if (!cfg.is_object() || !cfg.contains("prompts") || !cfg.contains("max_new_tokens"))
    throw Error(path + ": not the " + what + " prompt configuration");
  if (!cfg["prompts"].contains(name)) throw Error(family + ":" + name + " is not one of the English " + what + " " +
                                                  (family == "longbench" ? "datasets" : "tasks"));
  return {cfg["prompts"][name].get<std::string>(), cfg["max_new_tokens"][name].get<int64_t>()};
}

RunReport run_longbench(const Model& model, const RunOptions& o, const std::string& dataset,
                        const std::function<void(int64_t, const std::string&, size_t, size_t)>& on_row) {
  if (o.data.empty()) throw Error("eval run: longbench needs --data DATASET.jsonl (the public LongBench file)");
  const auto [tmpl, max_new] = load_prompt_config(o.longbench_config, "longbench", dataset, "LongBench");
  // pred.py: chat models are better off without the chat template on these.
  const bool raw = dataset == "trec" || dataset == "triviaqa" || dataset == "samsum" || dataset == "lcc" || dataset == "repobench-p";
  const Tokenizer& tok = model.tokenizer();
  const qa::Template chat = qa::detect_template(model);
  const std::string bos = model.config().bos_id >= 0 ? tok.token_text(model.config().bos_id) : "";
  const int64_t max_length = std::min(o.max_length, model.config().context_length - max_new - 64);

  const std::vector<json> rows = read_rows(o.data, o.limit, [](const json& row, const std::string& where) {
    if (!row.is_object() || !row.contains("context") || !row["context"].is_string() || !row.contains("input") ||
        !row["input"].is_string() || !row.contains("answers"))
      throw Error(where + ": a LongBench row needs 'context', 'input' and 'answers'");
  });
  qa::PromptCache cache;
  return write_predictions(o, rows.size(), [&](int64_t index) {
    const json& row = rows[static_cast<size_t>(index)];
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
    return json{{"pred", pred}, {"answers", row["answers"]}, {"all_classes", row.value("all_classes", json())},
                {"length", row.value("length", json())}, {"_id", row.value("_id", json())}, {"route", route}};
  }, on_row);
}

// The fields InfiniteBench's create_prompt fills for a task, from a row of the distributed JSONL.
std::map<std::string, std::string> infinitebench_fields(const std::string& task, const json& row, const std::string& where) {
  const std::string context = row.value("context", std::string()), input = row.value("input", std::string());
  std::map<std::string, std::string> f = {{"context", context}, {"input", input}, {"question", input}};
  if (task == "longbook_choice_eng" || task == "code_debug") {
    if (!row.contains("options") || !row["options"].is_array() || row["options"].size() < 4)
      throw Error(where + ": " + task + " rows need four 'options'");
    const char* names[] = {"OPTION_A", "OPTION_B", "OPTION_C", "OPTION_D"};
    for (size_t i = 0; i < 4; ++i) f[names[i]] = row["options"][i].is_string() ? row["options"][i].get<std::string>() : row["options"][i].dump();
  }
  if (task == "math_find") {
    // re.findall(r"The \w+ number", prompt)[0].lower()
    std::string target;
    for (size_t at = input.find("The "); at != std::string::npos && target.empty(); at = input.find("The ", at + 1)) {
      size_t end = at + 4;
      while (end < input.size() && (std::isalnum(static_cast<unsigned char>(input[end])) || input[end] == '_')) ++end;
      if (end > at + 4 && input.compare(end, 7, " number") == 0) target = input.substr(at, end + 7 - at);
    }
    if (target.empty()) throw Error(where + ": cannot find the target number in the input");
    std::transform(target.begin(), target.end(), target.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    f["prompt"] = "What is " + target + " in the following list?";
  }
  if (task == "code_run") {
    // re.findall(r"func_[0-9]+\(\-?[0-9]+\)", input)[0]
    auto digits = [&](size_t i) {
      size_t j = i;
      while (j < input.size() && std::isdigit(static_cast<unsigned char>(input[j]))) ++j;
      return j;
    };
    std::string call;
    for (size_t at = input.find("func_"); at != std::string::npos && call.empty(); at = input.find("func_", at + 1)) {
      size_t i = digits(at + 5);
      if (i == at + 5 || i >= input.size() || input[i] != '(') continue;
      size_t j = i + 1 < input.size() && input[i + 1] == '-' ? i + 2 : i + 1;
      const size_t k = digits(j);
      if (k > j && k < input.size() && input[k] == ')') call = input.substr(at, k + 1 - at);
    }
    if (call.empty()) throw Error(where + ": cannot find the function call in the input");
    f["func_call"] = call;
    f["func"] = call.substr(0, call.find('('));
  }
  return f;
}

RunReport run_infinitebench(const Model& model, const RunOptions& o, const std::string& task,
                            const std::function<void(int64_t, const std::string&, size_t, size_t)>& on_row) {
  if (o.data.empty()) throw Error("eval run: infinitebench needs --data TASK.jsonl (the distributed InfiniteBench file)");
  const auto [tmpl, max_new] = load_prompt_config(o.infinitebench_config, "infinitebench", task, "InfiniteBench");
  const Tokenizer& tok = model.tokenizer();
  const int64_t max_length = std::min(o.max_length, model.config().context_length - max_new - 64);

  const std::vector<json> rows = read_rows(o.data, o.limit, [](const json& row, const std::string& where) {
    if (!row.is_object() || !row.contains("answer")) throw Error(where + ": an InfiniteBench row needs 'answer'");
  });
  qa::PromptCache cache;
  return write_predictions(o, rows.size(), [&](int64_t index) {
    const json& row = rows[static_cast<size_t>(index)];
    std::map<std::string, std::string> fields = infinitebench_fields(task, row, o.data + ":" + std::to_string(index + 1));
    std::string route = "long";
    if (o.mode == qa::Mode::Rag) {
      fields["context"] = retrieve_chunks(fields["context"], fields["input"].empty() ? tmpl : fields["input"], tok, o.k, o.chunk_tokens);
      route = "rag";
    }
    // truncate_input(tokens, max_length, "middle"): tokens[:max // 2] + tokens[-max // 2:] (Python's floor division).
    std::vector<int32_t> ids = tok.encode(format_fields(tmpl, fields), false);
    if (static_cast<int64_t>(ids.size()) > max_length) {
      const auto head = static_cast<size_t>(max_length / 2), tail = static_cast<size_t>((max_length + 1) / 2);
      std::vector<int32_t> kept(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(head));
      kept.insert(kept.end(), ids.end() - static_cast<std::ptrdiff_t>(tail), ids.end());
      ids = tok.encode(tok.decode(kept, true), false);
    }
    if (model.config().bos_id >= 0) ids.insert(ids.begin(), model.config().bos_id);
    session_with(cache, model, static_cast<int64_t>(ids.size()) + max_new, o);
    GenerateOptions g;
    g.max_tokens = max_new;
    const std::string pred = qa::generate_cached(cache, ids, g, {}).result.text;
    // The choice tasks' labels are [answer, option letter], as the scorer reads them.
    json label = row["answer"];
    if ((task == "code_debug" || task == "longbook_choice_eng") && row.contains("options") && row["options"].is_array()) {
      const json answer = label.is_array() && !label.empty() ? label[0] : label;
      for (size_t k = 0; k < row["options"].size() && k < 4; ++k)
        if (row["options"][k] == answer) label = json::array({answer, std::string(1, static_cast<char>('A' + k))});
    }
    return json{{"id", row.value("id", json(index))}, {"prediction", pred}, {"ground_truth", label}, {"route", route}};
  }, on_row);
}

// ChatRAG Bench's evaluation/dataset.py reformat_question: the last 7 turns, the dataset's
// instruction, "User: ...\n\nAssistant: ...\n\n" and a closing "Assistant:".
std::string chatrag_question(json turns, const std::string& dataset, const std::string& where) {
  if (!turns.is_array() || turns.empty()) throw Error(where + ": 'messages' must be a non-empty list");
  if (turns.size() > 7) turns = json(std::vector<json>(turns.end() - 7, turns.end()));
  if (turns.back().value("role", "") != "user") throw Error(where + ": the last message must be the user's");
  static const std::vector<std::string> kLong = {"doc2dial", "quac", "qrecc", "inscit", "doqa_movies", "doqa_travel", "doqa_cooking",
                                                 "hybridial", "convfinqa"};
  if (std::find(kLong.begin(), kLong.end(), dataset) != kLong.end()) {
    for (json& t : turns)
      if (t.value("role", "") == "user") {
        t["content"] = "Please give a full and complete answer for the question. " + t.value("content", "");
        break;
      }
  } else if (dataset == "topiocqa") {
    turns.back()["content"] = "Answer the following question with a short span, or a full and complete answer. " + turns.back().value("content", "");
  } else if (dataset == "sqa") {
    turns.back()["content"] = "Answer the following question with one or a list of items. " + turns.back().value("content", "");
  } else if (dataset == "coqa") {
    turns.back()["content"] = "Answer the following question with a short span. The answer needs to be just in a few words. " +
                              turns.back().value("content", "");
  } else {
    throw Error("chatrag:" + dataset + " is not one of the ChatRAG Bench datasets");
  }
  std::string q;
  for (const json& t : turns) {
    const std::string role = t.value("role", "");
    if (role != "user" && role != "assistant") throw Error(where + ": roles are user and assistant");
    q += (role == "user" ? "User: " : "Assistant: ") + t.value("content", "") + "\n\n";
  }
  return q + "Assistant:";
}

RunReport run_chatrag(const Model& model, const RunOptions& o, const std::string& dataset,
                      const std::function<void(int64_t, const std::string&, size_t, size_t)>& on_row) {
  if (o.data.empty()) throw Error("eval run: chatrag needs --data DATASET.json (the ChatRAG Bench file, a JSON list)");
  std::ifstream in(o.data);
  if (!in) throw Error(o.data + ": cannot open");
  json samples = json::parse(in, nullptr, false);
  if (!samples.is_array()) throw Error(o.data + ": a ChatRAG Bench file is one JSON list of samples");
  if (o.limit > 0 && static_cast<int64_t>(samples.size()) > o.limit) samples.erase(samples.begin() + o.limit, samples.end());
  const Tokenizer& tok = model.tokenizer();
  // run_generation's defaults: 4,096 positions, 64 answer tokens, the top-5 contexts.
  constexpr int64_t kMaxSeq = 4096, kMaxOut = 64;
  const std::string system = std::string("System: ") + qa::kChatQaSystem;
  qa::PromptCache cache;
  return write_predictions(o, samples.size(), [&](int64_t index) {
    const json& sample = samples[static_cast<size_t>(index)];
    const std::string where = o.data + "[" + std::to_string(index) + "]";
    const std::string question = chatrag_question(sample.value("messages", json()), dataset, where);
    std::string context;
    const json ctxs = sample.value("ctxs", json::array());
    for (size_t c = 0; c < ctxs.size() && static_cast<int64_t>(c) < o.k; ++c)
      context += (c ? "\n\n" : "") + ("title: " + ctxs[c].value("title", "") + ", source: " + ctxs[c].value("text", ""));
    std::vector<int32_t> ctx_ids = tok.encode(context, false);
    const auto fixed = static_cast<int64_t>(tok.encode(question, false).size() + tok.encode(system, false).size());
    if (static_cast<int64_t>(ctx_ids.size()) + fixed + kMaxOut >= kMaxSeq) {
      ctx_ids.resize(static_cast<size_t>(std::max<int64_t>(0, kMaxSeq - kMaxOut - fixed)));
      context = tok.decode(ctx_ids, true);
    }
    std::vector<int32_t> ids = tok.encode(system + "\n\n" + context + "\n\n" + question, false);
    if (model.config().bos_id >= 0) ids.insert(ids.begin(), model.config().bos_id);
    session_with(cache, model, static_cast<int64_t>(ids.size()) + kMaxOut, o);
    GenerateOptions g;
    g.max_tokens = kMaxOut;
    std::string pred = py_strip(qa::generate_cached(cache, ids, g, {}).result.text);
    std::replace(pred.begin(), pred.end(), '\n', ' ');  // predictions are one line each in the official files
    json row = {{"pred", pred}};
    for (const char* key : {"answers", "answer", "exe_answer", "messages"})
      if (sample.contains(key)) row[key] = sample[key];
    return row;
  }, on_row);
}

}  // namespace

RunReport run_task(const Model& model, const RunOptions& o,
                   const std::function<void(int64_t, const std::string&, size_t, size_t)>& on_row) {
  const size_t colon = o.task.find(':');
  const std::string family = o.task.substr(0, colon), name = colon == std::string::npos ? "" : o.task.substr(colon + 1);
  if (family != "ruler" && family != "longbench" && family != "infinitebench" && family != "chatrag")
    throw Error("eval run: --task " + o.task + ": longqa runs ruler:TASK, longbench:DATASET, infinitebench:TASK and chatrag:DATASET");
  if (o.out.empty()) throw Error("eval run: --out PREDS.jsonl is required");
  const Tokenizer& tok = model.tokenizer();

  if (family == "longbench") return run_longbench(model, o, name, on_row);
  if (family == "infinitebench") return run_infinitebench(model, o, name, on_row);
  if (family == "chatrag") return run_chatrag(model, o, name, on_row);

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
      a.k = o.k;
      a.chunk_tokens = o.chunk_tokens;
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
