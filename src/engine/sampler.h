// Sampler — picks the next token from logits. Greedy when temperature <= 0; otherwise, in HF's
// order: repetition penalty, temperature, top-k, top-p, min-p, then a draw from a seeded generator.
// Buffers are sized at construction: sampling allocates nothing. One Sampler per sequence.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace longqa {

struct SamplerOptions {
  float temperature = 0.0f;     // <= 0: greedy
  int top_k = 0;                // 0: off
  float top_p = 1.0f;           // 1: off
  float min_p = 0.0f;           // 0: off
  float repeat_penalty = 1.0f;  // 1: off; HF semantics (divide positive logits, multiply negative)
  int repeat_last_n = 64;       // how many recent tokens the penalty looks at; -1: all
  uint64_t seed = 0;
};

class Sampler {
 public:
  Sampler(const SamplerOptions& options, int64_t vocab_size);

  // history: the tokens so far (prompt and generated), for the repetition penalty.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

 private:
  SamplerOptions o_;
  std::mt19937_64 rng_;
  std::vector<float> adjusted_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

}  // namespace longqa
