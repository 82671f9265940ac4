#include "apps/eval_commands.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/data_paths.h"
#include "apps/model_args.h"
#include "engine/kv_cache.h"
#include "eval/chatrag.h"
#include "eval/infinitebench.h"
#include "eval/niah.h"
#include "eval/runner.h"
#include "eval/sweep.h"
#include "eval/scorers.h"
#include "eval/text_norm.h"
#include "util/error.h"
#include "util/parse.h"

namespace longqa::apps {
namespace fs = std::filesystem;
using nlohmann::json;

struct EvalCommandState {
  ModelArgs model;
  eval::RunOptions run;
  eval::SweepOptions sweep;
  std::string chunk_sizes;
  eval::NiahOptions niah;
  std::string lengths, depths, mode = "long", kv_type = "f16", task, preds;
  bool json = false;
};

namespace {

template <class T>
std::vector<T> parse_list(const std::string& text, const char* option) {
  std::vector<T> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const std::optional<double> v = parse_double(item);
    if (!v) throw Error(std::string(option) + ": '" + item + "' is not a number");
    out.push_back(static_cast<T>(*v));
  }
  if (out.empty()) throw Error(std::string(option) + ": empty list");
  return out;
}

std::vector<std::string> bundled_haystack() {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(bundled_data("haystack")))
    if (e.path().extension() == ".txt") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

void cmd_niah(EvalCommandState& s) {
  eval::NiahOptions o = s.niah;
  if (!s.lengths.empty()) o.lengths = parse_list<int64_t>(s.lengths, "--lengths");
  if (!s.depths.empty()) o.depths = parse_list<double>(s.depths, "--depths");
  o.mode = qa::parse_mode(s.mode);
  o.kv_type = parse_kv_type(s.kv_type);
  o.threads = s.model.threads;
  if (o.haystack.empty()) o.haystack = bundled_haystack();
  const auto model = s.model.load();
  const eval::NiahReport r = eval::run_niah(*model, o, [&](const eval::NiahCell& c, size_t done, size_t total) {
    std::fprintf(stderr, "[%zu/%zu] length %lld, depth %g%%: score %g (%s)\n", done, total, static_cast<long long>(c.length),
                 c.depth, c.score, c.route.c_str());
  });
  json cells = json::array();
  for (const eval::NiahCell& c : r.cells)
    cells.push_back({{"length", c.length}, {"depth", c.depth}, {"score", c.score}, {"pred", c.pred}});
  const json summary = {{"accuracy", r.accuracy}, {"cells", cells}};
  const std::string text = summary.dump(-1, ' ', false, json::error_handler_t::replace);
  std::ofstream(fs::path(o.out_dir) / "niah.json") << text << "\n";
  if (s.json) {
    std::printf("%s\n", text.c_str());
  } else {
    std::printf("accuracy %.1f%% over %zu cells; results and heatmap (SVG, PNG) in %s\n", r.accuracy * 100, r.cells.size(),
                o.out_dir.c_str());
  }
}

std::vector<std::string> strings(const json& row, const char* key, const std::string& where) {
  const auto it = row.find(key);
  if (it == row.end()) throw Error(where + ": no '" + key + "' field");
  std::vector<std::string> out;
  if (it->is_string()) return {it->get<std::string>()};
  if (!it->is_array()) throw Error(where + ": '" + key + "' must be a string or a list of strings");
  for (const json& v : *it) {
    if (!v.is_string()) throw Error(where + ": '" + key + "' must be a string or a list of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// Python's str() of a JSON scalar as json.load gives it: ints, floats (repr), strings as they are.
std::string py_str(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return v.dump();
  if (v.is_number_float()) return eval::py_repr(v.get<double>());
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  return v.dump();
}

// ChatRAG gold answers: "answers", else "answer" (a string, a list, or anything else as str()).
std::vector<std::string> chatrag_answers(const json& row, const std::string& where) {
  if (row.contains("answers")) return strings(row, "answers", where);
  if (!row.contains("answer")) throw Error(where + ": needs 'answers' or 'answer'");
  const json& a = row["answer"];
  if (a.is_array()) return strings(row, "answer", where);
  return {py_str(a)};
}

void cmd_score(EvalCommandState& s) {
  const size_t colon = s.task.find(':');
  const std::string family = s.task.substr(0, colon), name = colon == std::string::npos ? "" : s.task.substr(colon + 1);
  if (family != "ruler" && family != "longbench" && family != "chatrag" && family != "infinitebench")
    throw Error("--task " + s.task + ": longqa scores ruler:TASK, longbench:DATASET, chatrag:DATASET and infinitebench:TASK");
  std::ifstream in(s.preds);
  if (!in) throw Error(s.preds + ": cannot open");
  std::vector<std::string> preds, all_classes;
  std::vector<std::vector<std::string>> refs;
  std::vector<eval::ConvFinQaGold> convfinqa;
  std::vector<json> labels;
  std::string label_key;  // compute_scores.py: "ground_truth" or "label", as the first row has it
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = s.preds + ":" + std::to_string(line_no);
    const json row = json::parse(line, nullptr, false);
    if (!row.is_object()) throw Error(where + ": not a JSON object");
    if (family == "infinitebench") {
      // get_preds: "prediction", else "pred"; get_labels: the first row's key, a placeholder where missing.
      const char* key = row.contains("prediction") ? "prediction" : row.contains("pred") ? "pred" : nullptr;
      if (!key || !row[key].is_string()) throw Error(where + ": no string 'prediction' or 'pred'");
      if (label_key.empty()) {
        label_key = row.contains("ground_truth") ? "ground_truth" : row.contains("label") ? "label" : "";
        if (label_key.empty()) throw Error(where + ": no 'ground_truth' or 'label'");
      }
      preds.push_back(row[key].get<std::string>());
      labels.push_back(row.contains(label_key) ? row[label_key] : json("XXXXXXXXXX"));
      continue;
    }
    if (!row.contains("pred") || !row["pred"].is_string()) throw Error(where + ": no string 'pred'");
    const std::string pred = row["pred"].get<std::string>();
    if (family == "ruler") {
      preds.push_back(eval::ruler_postprocess(pred));
      refs.push_back(strings(row, "outputs", where));
    } else if (family == "longbench") {
      preds.push_back(pred);
      refs.push_back(strings(row, "answers", where));
      if (row.contains("all_classes") && row["all_classes"].is_array()) all_classes = strings(row, "all_classes", where);
      else all_classes.clear();  // eval.py keeps the last row's value, whatever it is
    } else if (name == "convfinqa") {
      preds.push_back(eval::py_strip(pred));  // get_scores.py reads predictions as stripped lines
      if (!row.contains("exe_answer") || !row.contains("messages") || !row["messages"].is_array() || row["messages"].empty())
        throw Error(where + ": convfinqa rows need 'exe_answer', 'answers' and 'messages'");
      const json& exe = row["exe_answer"];
      const json& last = row["messages"].back();
      if (!last.is_object() || !last.contains("content") || !last["content"].is_string())
        throw Error(where + ": the last message has no 'content'");
      const std::vector<std::string> answers = strings(row, "answers", where);
      if (answers.empty()) throw Error(where + ": 'answers' is empty");
      convfinqa.push_back({py_str(exe), exe.is_number(), exe.is_number_integer(), answers[0], last["content"].get<std::string>()});
    } else {
      preds.push_back(eval::py_strip(pred));
      refs.push_back(chatrag_answers(row, where));
    }
  }
  double score = 0;
  std::string official;  // what the official script prints, where it prints something else than `score`
  if (family == "infinitebench") {
    const double fraction = eval::infinitebench_score(name, preds, labels);
    official = eval::py_repr(fraction);  // print(acc)
    score = 100 * fraction;
  } else if (family == "chatrag") {
    const double fraction = name == "convfinqa" ? eval::convfinqa_accuracy(preds, convfinqa) : eval::chatrag_f1(name, preds, refs);
    char buf[64];
    std::snprintf(buf, sizeof buf, name == "convfinqa" ? "accuracy of exact match: %.4f" : "f1: %.4f", fraction);
    official = buf;
    score = 100 * fraction;
  } else if (family == "ruler") {
    score = eval::ruler_uses_part(name) ? eval::string_match_part(preds, refs) : eval::string_match_all(preds, refs);
  } else {
    score = eval::longbench_score(name, preds, refs, all_classes);
  }
  if (s.json) {
    std::printf("{\"task\": %s, \"score\": %s, \"n\": %zu%s}\n", json(s.task).dump().c_str(), eval::py_repr(score).c_str(),
                preds.size(), official.empty() ? "" : (", \"official\": " + json(official).dump()).c_str());
  } else {
    std::printf("%s: %s (%zu predictions)%s\n", s.task.c_str(), eval::py_repr(score).c_str(), preds.size(),
                official.empty() ? "" : ("; the official script prints: " + official).c_str());
  }
}

void cmd_run(EvalCommandState& s) {
  eval::RunOptions o = s.run;
  o.mode = qa::parse_mode(s.mode);
  o.kv_type = parse_kv_type(s.kv_type);
  o.threads = s.model.threads;
  if (o.haystack.empty() && o.data.empty()) o.haystack = bundled_haystack();
  o.longbench_config = bundled_data("eval/longbench.json");
  o.infinitebench_config = bundled_data("eval/infinitebench.json");
  const auto model = s.model.load();
  const eval::RunReport r = eval::run_task(*model, o, [](int64_t index, const std::string&, size_t done, size_t total) {
    std::fprintf(stderr, "[%zu/%zu] sample %lld done\n", done, total, static_cast<long long>(index));
  });
  std::printf("%lld predictions written, %lld already in %s\n", static_cast<long long>(r.generated),
              static_cast<long long>(r.already_done), o.out.c_str());
}

void cmd_sweep(EvalCommandState& s) {
  eval::SweepOptions o = s.sweep;
  if (!s.lengths.empty()) o.lengths = parse_list<int64_t>(s.lengths, "--lengths");
  if (!s.chunk_sizes.empty()) o.chunk_sizes = parse_list<int64_t>(s.chunk_sizes, "--chunk-sizes");
  o.base.kv_type = parse_kv_type(s.kv_type);
  o.base.threads = s.model.threads;
  o.base.haystack = bundled_haystack();
  const auto model = s.model.load();
  eval::run_sweep(*model, o, [](const eval::SweepRow& r) {
    std::fprintf(stderr, "[%s] %s, length %lld, chunk %lld x %lld: %.2f\n", r.study.c_str(), r.mode.c_str(),
                 static_cast<long long>(r.length), static_cast<long long>(r.chunk_tokens), static_cast<long long>(r.k), r.score);
  });
  std::printf("tables in %s/sweep.md, plot in %s/long-vs-rag.svg\n", o.out_dir.c_str(), o.out_dir.c_str());
}

}  // namespace

std::shared_ptr<EvalCommandState> add_eval_commands(CLI::App& app) {
  auto s = std::make_shared<EvalCommandState>();
  auto* eval_cmd = app.add_subcommand("eval", "evaluate long-context ability the way the public benchmarks score it");
  eval_cmd->require_subcommand(1);

  auto* niah = eval_cmd->add_subcommand("niah", "needle in a haystack over context lengths x depths, with a heatmap");
  s->model.add(niah);
  s->niah.out_dir = "niah-results";
  niah->add_option("--haystack", s->niah.haystack, "haystack text files (default: the bundled data/haystack)");
  niah->add_option("--lengths", s->lengths, "context lengths in tokens, comma-separated (default 1024,2048,4096,8192)");
  niah->add_option("--depths", s->depths, "needle depths in percent, comma-separated (default 0,25,50,75,100)");
  niah->add_option("--needle", s->niah.needle, "the needle sentence");
  niah->add_option("--question", s->niah.question, "the question that asks for it");
  niah->add_option("--answer", s->niah.answer, "the text a correct answer contains");
  niah->add_option("--mode", s->mode, "long, rag or auto")->capture_default_str();
  niah->add_option("--buffer", s->niah.buffer, "tokens of each length left for the prompt and answer")->capture_default_str();
  niah->add_option("-n,--max-tokens", s->niah.max_tokens, "answer tokens")->capture_default_str();
  niah->add_option("--kv-type", s->kv_type, "KV cache type: f32, f16, bf16 or q8_0")->capture_default_str();
  niah->add_option("--out", s->niah.out_dir, "results directory (rows already there are not run again)")->capture_default_str();
  niah->add_flag("--json", s->json, "print {\"accuracy\": A, \"cells\": [...]}");
  niah->callback([s] { cmd_niah(*s); });

  auto* run = eval_cmd->add_subcommand("run", "generate predictions for a task (resumable: rows already written are kept)");
  s->model.add(run);
  run->add_option("--task", s->run.task, "ruler:TASK, longbench:DATASET, infinitebench:TASK or chatrag:DATASET (e.g. ruler:vt, longbench:qasper, infinitebench:passkey, chatrag:doc2dial)")->required();
  run->add_option("--data", s->run.data, "the benchmark's file as distributed (LongBench, InfiniteBench JSONL; ChatRAG JSON), or a RULER-prepared JSONL (default for RULER: generate)");
  run->add_option("--max-length", s->run.max_length, "prompt tokens kept by middle truncation (LongBench, InfiniteBench)")->capture_default_str();
  run->add_option("--k", s->run.k, "rag mode: chunks retrieved; ChatRAG: contexts used")->capture_default_str();
  run->add_option("--chunk-tokens", s->run.chunk_tokens, "rag mode: chunk size")->capture_default_str();
  run->add_option("--length", s->run.length, "generated samples: prompt + answer tokens")->capture_default_str();
  run->add_option("--samples", s->run.samples, "generated samples")->capture_default_str();
  run->add_option("--limit", s->run.limit, "at most this many samples");
  run->add_option("--mode", s->mode, "long, rag or auto (generated samples)")->capture_default_str();
  run->add_option("--haystack", s->run.haystack, "essay text files (default: the bundled data/haystack)");
  run->add_option("--kv-type", s->kv_type, "KV cache type: f32, f16, bf16 or q8_0")->capture_default_str();
  run->add_option("--out", s->run.out, "PREDS.jsonl (appended to)")->required();
  run->callback([s] { cmd_run(*s); });

  auto* sweep = eval_cmd->add_subcommand("sweep", "the paper's Table-1 study: chunk size x top-k, and long context vs RAG by length");
  s->model.add(sweep);
  sweep->add_option("--task", s->sweep.task, "a RULER task")->capture_default_str();
  sweep->add_option("--budget", s->sweep.budget, "retrieved tokens per prompt (chunk size x top-k)")->capture_default_str();
  sweep->add_option("--chunk-sizes", s->chunk_sizes, "chunk sizes, comma-separated (default 300,600,1200,2400)");
  sweep->add_option("--lengths", s->lengths, "input lengths, comma-separated (default 4096,8192,16384)");
  sweep->add_option("--samples", s->sweep.samples, "samples per configuration")->capture_default_str();
  sweep->add_option("--kv-type", s->kv_type, "KV cache type: f32, f16, bf16 or q8_0")->capture_default_str();
  sweep->add_option("--out", s->sweep.out_dir, "results directory (finished configurations are kept)")->capture_default_str();
  sweep->callback([s] { cmd_sweep(*s); });

  auto* score = eval_cmd->add_subcommand("score", "score a predictions file as the benchmark's own code does");
  score->add_option("--task", s->task, "ruler:TASK, longbench:DATASET, chatrag:DATASET or infinitebench:TASK (e.g. infinitebench:passkey)")->required();
  score->add_option("--preds", s->preds, "predictions, JSONL in the benchmark's format")->required();
  score->add_flag("--json", s->json, "print {\"task\": TASK, \"score\": S, \"n\": N}");
  score->callback([s] { cmd_score(*s); });
  return s;
}

}  // namespace longqa::apps
