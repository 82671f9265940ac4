// `eval sweep` — the ChatQA-2 paper's Table-1 study on a RULER task: (1) at a fixed retrieval budget,
// chunk size x top-k (k = budget / chunk size) in RAG mode, and (2) long context against RAG at
// several input lengths. Each configuration is an `eval run` into its own predictions file under the
// output directory (so a sweep resumes where it stopped), scored with RULER's metric; the results
// go to sweep.json, sweep.md (Markdown tables) and long-vs-rag.svg. One thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/model.h"
#include "eval/runner.h"

namespace longqa::eval {

struct SweepOptions {
  std::string task = "ruler:niah_multikey_1";
  int64_t budget = 6000;                              // retrieved tokens per prompt in study 1 (the paper's ~6K)
  std::vector<int64_t> chunk_sizes = {300, 600, 1200, 2400};
  std::vector<int64_t> lengths = {4096, 8192, 16384};  // study 2; study 1 runs at the longest
  int64_t samples = 10;
  std::string out_dir = "sweep-results";
  RunOptions base;                                     // model-side settings (threads, KV type, haystack)
};

struct SweepRow {
  std::string study;  // "chunking" or "long-vs-rag"
  std::string mode;   // long or rag
  int64_t length = 0, chunk_tokens = 0, k = 0;
  double score = 0;   // RULER's metric, percent
};

std::vector<SweepRow> run_sweep(const Model& model, const SweepOptions& options,
                                const std::function<void(const SweepRow&)>& on_row);

}  // namespace longqa::eval
