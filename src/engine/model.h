// Model — a loaded transformer: configuration, tokenizer and weight views into the model file(s),
// which the Model owns (read into huge-page memory, or mapped: LoadOptions::weights). Loaded from a
// GGUF file or an HF directory; every tensor is checked for presence, type and shape at load.
// Immutable after load: share one Model between threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/model_config.h"
#include "engine/rope.h"
#include "engine/tokenizer.h"
#include "kernels/cpu/matmul.h"
#include "util/mapped_file.h"

namespace longqa {

namespace gguf {
class File;
}
class SafetensorsModel;

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> q_bias, k_bias, v_bias;  // empty without attention biases
  kernels::MatrixView wq, wk, wv, wo;
  kernels::MatrixView w_gate, w_up, w_down;
};

struct Weights {
  kernels::MatrixView embedding;  // [vocab, hidden]
  kernels::MatrixView output;     // [vocab, hidden]; the embedding when tied
  std::vector<float> output_norm;
  std::vector<LayerWeights> layers;
};

struct LoadOptions {
  RopeOverride rope;
  // Weights are read into huge-page memory unless a mapping is asked for (MappedFile says why).
  FileResidency weights = FileResidency::HugePages;
};

struct TensorSummary {
  std::string name;
  std::string type;
  std::vector<int64_t> shape;  // row-major, outermost first
};

class Model {
 public:
  static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& options = {});
  ~Model();

  const std::string& path() const { return path_; }
  const std::string& format() const { return format_; }  // "gguf" or "hf"
  const ModelConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const RopeTable& rope() const { return rope_; }
  const std::vector<TensorSummary>& tensors() const { return tensors_; }
  const gguf::File* gguf_file() const { return gguf_.get(); }
  const SafetensorsModel* safetensors() const { return safetensors_.get(); }

  // Ids that end generation: the configured EOS ids and the end-of-turn tokens the vocabulary has.
  std::vector<int32_t> stop_tokens() const;

 private:
  Model() = default;
  void load_gguf(const LoadOptions& options);
  void load_hf(const LoadOptions& options);
  void finish(const LoadOptions& options);

  std::string path_;
  std::string format_;
  ModelConfig config_;
  RopeTable rope_;
  Weights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<TensorSummary> tensors_;
  std::unique_ptr<gguf::File> gguf_;
  std::unique_ptr<SafetensorsModel> safetensors_;
};

}  // namespace longqa
