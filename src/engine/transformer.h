// Session — one sequence being evaluated by a Model: its KV cache, its position, and the scratch
// buffers of the forward pass, all allocated at construction (nothing allocates while decoding).
// Prompts are evaluated in chunks of `batch` tokens, so memory never grows with the prompt beyond the
// KV cache. A Session is used by one thread at a time; many Sessions may share one Model.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/kv_cache.h"
#include "engine/model.h"

namespace longqa {

struct SessionOptions {
  int64_t context = 0;  // KV-cache positions; 0 = the model's trained context
  int64_t batch = 256;  // tokens per prefill chunk
  int threads = 0;      // 0 = all hardware threads
  kernels::WType kv_type = kernels::WType::F32;  // f32, f16, bf16 or q8_0
};

class Session {
 public:
  Session(const Model& model, const SessionOptions& options);

  // Appends tokens to the sequence and returns the logits after the last one (a view valid until the
  // next call).
  std::span<const float> decode(std::span<const int32_t> tokens);

  // Appends tokens, also appending per-position rows to the given outputs: logits (vocab floats per
  // token) and the final-norm hidden state (hidden floats per token). Either may be null.
  void evaluate(std::span<const int32_t> tokens, std::vector<float>* logits, std::vector<float>* hidden);

  // The final-norm hidden state of the last token evaluated.
  std::span<const float> last_hidden() const;

  int64_t position() const { return position_; }
  int64_t capacity() const { return cache_.capacity(); }
  // Forgets everything after the first n tokens (n <= position()).
  void rewind(int64_t n);

  const Model& model() const { return model_; }
  size_t cache_bytes() const { return cache_.bytes(); }

  // Persisting a prompt prefix's KV cache, so that another process can skip prefilling it.
  // save_prefix writes the cache of all position() tokens, which are `tokens`, to path (a temporary
  // file, then rename). load_prefix replaces this session's state with a saved one and returns its
  // tokens; it raises Error if the file is not a prefix saved from this model shape and KV type.
  void save_prefix(const std::string& path, std::span<const int32_t> tokens) const;
  std::vector<int32_t> load_prefix(const std::string& path);

 private:
  // Runs one chunk (n <= batch) through all layers; leaves final-norm hidden rows in normed_.
  void forward_chunk(const int32_t* tokens, int64_t n);
  void attention(int64_t layer, int64_t n);
  static constexpr int64_t kTokenTile = 8;  // tokens whose queries share one pass over the cache

  const Model& model_;
  const ModelConfig& c_;
  int64_t batch_;
  int threads_;
  int64_t position_ = 0;
  int64_t last_row_ = -1;  // row of normed_ holding the last token's hidden state
  KvCache cache_;
  std::vector<float> x_, normed_, q_, k_, v_, attn_, gate_, up_, tmp_, cos_, sin_, logits_;
  std::vector<uint8_t> act_scratch_;
  std::vector<kernels::AttentionScratch> attention_scratch_;  // one per thread
};

}  // namespace longqa
