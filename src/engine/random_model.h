// Models with random weights and real shapes, written as GGUF files, for benchmarking without
// downloads: `tiny`, `llama3-1b` (Llama-3.2-1B) and `llama3-8b` (Llama-3-8B / ChatQA-2 128K). They
// carry a synthetic byte-level vocabulary of the real size so that any GGUF reader can load them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/quantize.h"

namespace longqa {

struct ModelShape {
  std::string name;
  int64_t hidden, layers, heads, kv_heads, ffn, vocab, context;
  double rope_theta;
  bool tied;
};

const ModelShape& model_shape(const std::string& name);  // throws listing the known shapes
std::vector<std::string> model_shape_names();

void write_random_model(const ModelShape& shape, QuantMix type, const std::string& out_path, uint64_t seed, int threads);

}  // namespace longqa
