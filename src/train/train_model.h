// TrainModel — a Llama-family decoder in trainable form: every parameter in one f32 buffer (so that
// AdamW, clipping and checkpoints are single loops), a gradient buffer of the same layout, and named
// views into both. It starts from random weights (GPT-2-style initialisation) or from a GGUF model
// (`--init`, dequantized), and saves itself as a GGUF file the engine loads as it is (F32 tensors,
// llama.cpp's names, RoPE on interleaved pairs). One owner; not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/model_config.h"

namespace longqa::train {

struct TrainConfig {
  int64_t vocab = 0, hidden = 256, layers = 4, heads = 4, kv_heads = 2, ffn = 768, context = 1024;
  double rope_theta = 10000, rms_eps = 1e-5;
  bool tied = false;
  int32_t bos = -1, eos = -1;
  int64_t head_dim() const { return hidden / heads; }
  void validate() const;  // throws Error naming the bad field
  ModelConfig model_config() const;
};

template <typename T>
struct LayerTensors {
  T attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
};
template <typename T>
struct ModelTensors {
  T embedding, output_norm, output;  // output aliases embedding when tied
  std::vector<LayerTensors<T>> layers;
};

class TrainModel {
 public:
  explicit TrainModel(const TrainConfig& c);
  // A GGUF llama-architecture model (any weight type), its RoPE base replaced by rope_theta when > 0
  // and its context raised to `context` when that is longer.
  static TrainModel from_gguf(const std::string& path, double rope_theta, int64_t context);

  void init_random(uint64_t seed);
  // Writes the model and the tokenizer (a tokenizer.json, or the GGUF it came from) as a GGUF file;
  // a training step >= 0 is recorded under `longqa.train.step`.
  // step >= 0: recorded as longqa.train.step; averaged > 0: the weights are the mean of that many snapshots.
  void save_gguf(const std::string& path, const std::string& tokenizer, const std::string& name, int64_t step = -1,
                 int64_t averaged = 0) const;

  const TrainConfig& config() const { return c_; }
  std::span<float> params() { return params_; }
  std::span<const float> params() const { return params_; }
  std::span<float> grads() { return grads_; }
  ModelTensors<float*> weights() { return layout(params_.data()); }
  ModelTensors<const float*> weights() const;
  ModelTensors<float*> gradients() { return layout(grads_.data()); }

 private:
  ModelTensors<float*> layout(float* base) const;

  TrainConfig c_;
  std::vector<float> params_, grads_;
};

}  // namespace longqa::train
