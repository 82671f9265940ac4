// Needle in a haystack (Kamradt's test, as its public code runs it): a haystack of text files read in
// sorted order, cut to each context length in the model's tokens (less a buffer for the prompt and
// answer), the needle inserted at each depth and moved back to the nearest '.' token before it,
// greedy decoding, scored by string match (the answer found in the reply, case-insensitively; no
// LLM judge). Cells already in the results file are not run again. One thread (the model's own
// threads do the work).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/model.h"
#include "qa/router.h"

namespace longqa::eval {

struct NiahOptions {
  std::vector<std::string> haystack;  // text files; read in sorted order, repeated until long enough
  std::vector<int64_t> lengths = {1024, 2048, 4096, 8192};
  std::vector<double> depths = {0, 25, 50, 75, 100};
  std::string needle = "\nThe best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day.\n";
  std::string question = "What is the best thing to do in San Francisco?";
  std::string answer = "eat a sandwich and sit in Dolores Park on a sunny day";
  qa::Mode mode = qa::Mode::Long;
  int64_t buffer = 200;      // tokens left for the system line, question and answer (the public test's)
  int64_t max_tokens = 48;   // answer tokens
  std::string out_dir;       // niah.jsonl (resumable rows), niah.json, heatmap.svg, heatmap.png
  int threads = 0;
  kernels::WType kv_type = kernels::WType::F16;
};

struct NiahCell {
  int64_t length = 0;
  double depth = 0;
  double score = 0;
  std::string pred, route;
};

struct NiahReport {
  double accuracy = 0;  // mean score over the cells
  std::vector<NiahCell> cells;
};

// Builds the context of one cell: the haystack's first (length - buffer) tokens with the needle's
// tokens inserted at depth% (backed up to just after a '.' token), decoded to text.
std::string niah_context(const Tokenizer& tokenizer, const std::vector<int32_t>& haystack, const std::vector<int32_t>& needle,
                         int64_t context_tokens, double depth);

// on_cell is called after each cell that was run (not for resumed ones), for progress.
NiahReport run_niah(const Model& model, const NiahOptions& options, const std::function<void(const NiahCell&, size_t done, size_t total)>& on_cell);

}  // namespace longqa::eval
