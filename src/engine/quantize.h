// quantize_gguf — rewrites a GGUF model with its weight matrices in a block-quantized type, following
// llama.cpp's public mixes: Q4_K_M / Q5_K_M keep the output matrix and, in the layers that
// `use_more_bits` selects, attn_v and ffn_down in Q6_K. 1-D tensors stay F32. The result loads in
// longqa and in other GGUF readers.
#pragma once

#include <cstdint>
#include <string>

#include "engine/gguf.h"

namespace longqa {

enum class QuantMix { Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K, F16, BF16 };
QuantMix parse_quant_mix(const std::string& s);
// llama.cpp's `general.file_type` number of a mix, so that readers report it correctly.
uint32_t gguf_file_type(QuantMix m);

// The type one tensor gets under a mix (layer/n_layers for the per-layer rules; -1 for others).
gguf::TensorType quant_type_for(QuantMix mix, const std::string& name, int64_t cols, int layer, int n_layers, bool tied);

// Encodes one row of n floats as `type` (float or block type) into out (gguf::row_bytes(type, n) bytes).
void encode_row(gguf::TensorType type, const float* x, uint8_t* out, int64_t n);

void quantize_gguf(const std::string& in_path, const std::string& out_path, QuantMix mix, int threads);

}  // namespace longqa
