// RoPE inverse frequencies for every supported scaling (plain base, linear, Llama-3.1 `llama3`, YaRN),
// computed exactly as HF transformers computes them, plus the cos/sin scale YaRN applies.
#pragma once

#include <vector>

#include "engine/model_config.h"

namespace longqa {

struct RopeTable {
  std::vector<float> inv_freq;   // head_dim / 2 entries
  float attention_scaling = 1;   // multiplies cos and sin (YaRN); 1 otherwise
};

RopeTable rope_table(const RopeConfig& rope, int64_t head_dim, int64_t context_length);

}  // namespace longqa
