// ModelConfig — the hyper-parameters of a decoder-only transformer of the Llama family, read from an
// HF config.json or from GGUF `{arch}.*` keys, validated once so the forward pass can trust them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace longqa {

namespace gguf {
class File;
}

enum class Arch { Llama, Mistral, Qwen2 };
const char* arch_name(Arch a);

enum class RopeScaling { None, Linear, Llama3, Yarn };
const char* rope_scaling_name(RopeScaling s);

struct RopeConfig {
  double theta = 10000.0;
  RopeScaling scaling = RopeScaling::None;
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_context = 0;   // llama3 / yarn; 0 = the model's context length
  double yarn_beta_fast = 32.0;
  double yarn_beta_slow = 1.0;
  std::optional<double> attention_factor;  // yarn: scales cos/sin; default from the factor
  // Rotation pairs: HF checkpoints rotate (i, i + d/2); GGUF Llama files, whose q/k rows are permuted,
  // rotate adjacent pairs (2i, 2i + 1).
  bool interleaved = false;
  // GGUF `rope_freqs.weight`: per-frequency divisors written by llama.cpp's convert for llama3 scaling.
  std::vector<float> freq_factors;
};

// User overrides from the command line, applied after the file's own settings.
struct RopeOverride {
  std::optional<double> theta;
  std::optional<RopeScaling> scaling;
  std::optional<double> factor;
  std::optional<int64_t> original_context;
};

struct ModelConfig {
  Arch arch = Arch::Llama;
  int64_t vocab_size = 0;
  int64_t hidden = 0;
  int64_t ffn = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t context_length = 0;  // trained context (max_position_embeddings)
  int64_t sliding_window = 0;  // 0: full causal attention
  double rms_eps = 1e-5;
  bool attn_bias = false;      // q/k/v biases (Qwen2)
  bool tied_embeddings = false;
  RopeConfig rope;
  int32_t bos_id = -1;
  std::vector<int32_t> eos_ids;

  void validate(const std::string& source) const;  // throws naming the source and the field
  void apply(const RopeOverride& o);
};

ModelConfig config_from_hf(const nlohmann::json& j, const std::string& source);
ModelConfig config_from_gguf(const gguf::File& f);

RopeScaling parse_rope_scaling(const std::string& s, const std::string& source);

}  // namespace longqa
