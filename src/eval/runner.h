// `eval run`: predictions for a task, one JSONL row per sample in the benchmark's own prediction
// format, appended as each finishes; samples already in the file are not generated again. RULER tasks
// are generated at --length (ruler.h) and asked through the Conversation (so long context, RAG and the
// router can be compared on the same samples), or read from a RULER-prepared JSONL (--data) and
// completed as raw prompts, RULER's own protocol. One thread (the model's threads do the work).
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
  int threads = 0;
  kernels::WType kv_type = kernels::WType::F16;
};

struct RunReport {
  int64_t generated = 0, already_done = 0;
};

RunReport run_task(const Model& model, const RunOptions& options,
                   const std::function<void(int64_t index, const std::string& pred, size_t done, size_t total)>& on_row);

}  // namespace longqa::eval
