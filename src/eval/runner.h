// `eval run`: predictions for a task, one JSONL row per sample in the benchmark's own prediction
// format, appended as each finishes; samples already in the file are not generated again.
// - ruler:TASK: generated at --length (ruler.h) and asked through the Conversation (so long context,
//   RAG and the router can be compared on the same samples), or read from a RULER-prepared JSONL
//   (--data) and completed as raw prompts, RULER's own protocol.
// - longbench:DATASET: the public JSONL (--data) through LongBench's pred.py protocol: its prompt
//   template, middle truncation to --max-length tokens, the chat template except for the few-shot and
//   code datasets, greedy decoding of its max_new_tokens; in rag mode the context is replaced by the
//   top-k BM25 chunks for the question.
// - infinitebench:TASK: the distributed JSONL (--data; id, context, input, answer, options) with the
//   yarn-mistral templates (InfiniteBench's prompts for open models), middle truncation as
//   truncate_input does, raw prompts, the task's max_new_tokens; rows as compute_scores.py reads them.
// - chatrag:DATASET: the ChatRAG Bench JSON list (--data) through its evaluation/dataset.py prompt
//   (ChatQA system line, the top --k contexts as "title: ..., source: ...", the last 7 turns with the
//   dataset's instruction, context cut to fit 4,096 positions with 64 answer tokens).
// One thread (the model's threads do the work).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/model.h"
#include "qa/router.h"

namespace longqa::eval {

struct RunOptions {
  std::string task;           // e.g. ruler:niah_multikey_1
  std::string data;           // a RULER-prepared JSONL; empty: generate
  std::string out;            // PREDS.jsonl
  int64_t length = 4096;      // generated samples: prompt + answer tokens
  int64_t samples = 20;       // generated samples
  int64_t limit = 0;          // at most this many samples (0: all)
  qa::Mode mode = qa::Mode::Long;
  std::vector<std::string> haystack;  // the essay text files
  std::string longbench_config;       // data/eval/longbench.json: prompt templates and answer lengths
  std::string infinitebench_config;   // data/eval/infinitebench.json
  int64_t max_length = 31500;         // prompt tokens kept by middle truncation (LongBench's model2maxlen for 32K)
  int64_t k = 5, chunk_tokens = 1200; // rag mode
  int threads = 0;
  kernels::WType kv_type = kernels::WType::F16;
};

struct RunReport {
  int64_t generated = 0, already_done = 0;
};

RunReport run_task(const Model& model, const RunOptions& options,
                   const std::function<void(int64_t index, const std::string& pred, size_t done, size_t total)>& on_row);

}  // namespace longqa::eval
