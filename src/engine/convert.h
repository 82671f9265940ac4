// convert_hf_to_gguf — writes an HF model directory as a GGUF v3 file in the layout llama.cpp
// produces: `llama` architecture for Llama and Mistral (q/k rows permuted for interleaved RoPE),
// `qwen2` for Qwen2, byte-level tokenizers as `gpt2` vocabularies, llama3 RoPE scaling as the
// `rope_freqs.weight` tensor.
#pragma once

#include <string>

#include "engine/gguf_writer.h"
#include "engine/model_config.h"

namespace longqa {

enum class ConvertType { F32, F16, BF16 };
ConvertType parse_convert_type(const std::string& s);

// The `general.*` and `{arch}.*` hyper-parameter keys of a model, as llama.cpp names them (llama3
// RoPE scaling is not among them: it travels as the rope_freqs.weight tensor).
void write_hparams(gguf::Writer& w, const ModelConfig& c, const std::string& name);

// The `tokenizer.ggml.*` keys of a byte-level BPE tokenizer.json (vocabulary padded to the model's
// embedding rows, as llama.cpp does); SentencePiece tokenizers are refused.
void write_tokenizer(gguf::Writer& w, const std::string& tokenizer_json, const ModelConfig& c);

void convert_hf_to_gguf(const std::string& hf_dir, const std::string& out_path, ConvertType type);

}  // namespace longqa
