// `longqa bench`: prompt-processing and generation speed of a model on this machine, with the bytes
// and FLOPs behind each figure so that it can be set beside the hardware's limits.
#pragma once

#include <cstdint>
#include <string>

namespace longqa::apps {

struct BenchOptions {
  std::string model;
  int64_t prompt = 512;
  int64_t generate = 128;
  int64_t depth = 0;  // tokens already in the KV cache before both measurements
  int threads = 0;
  int repetitions = 3;
  std::string kv_type = "f32";
  bool json = false;
  bool mmap = false;  // weights mapped instead of read into huge pages
};

void run_bench(const BenchOptions& o);

}  // namespace longqa::apps
