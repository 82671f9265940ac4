// Model::load — maps GGUF and HF tensors onto the weight views the forward pass uses, checking names,
// types and shapes, so that nothing later can read outside a tensor.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/safetensors.h"
#include "util/error.h"

namespace longqa {
namespace fs = std::filesystem;
using kernels::MatrixView;
using kernels::WType;

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// A tensor found in either format, row-major shape, with its element type.
struct Found {
  std::string name;
  WType type;
  std::vector<int64_t> shape;
  const void* data;
};

std::vector<float> to_vector(const Found& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  kernels::to_f32(t.type, t.data, v.data(), n);
  return v;
}

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual std::optional<Found> find(const std::string& name) const = 0;
  virtual std::string where() const = 0;

  Found require(const std::string& name, std::vector<int64_t> shape) const {
    auto t = find(name);
    if (!t) throw Error(where() + ": missing tensor '" + name + "'");
    if (t->shape != shape)
      throw Error(where() + ": tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected " + shape_str(shape));
    return *t;
  }
  MatrixView matrix(const std::string& name, int64_t rows, int64_t cols) const {
    const Found t = require(name, {rows, cols});
    return {t.type, t.data, rows, cols};
  }
  std::vector<float> vector(const std::string& name, int64_t n) const { return to_vector(require(name, {n})); }
};

class GgufSource final : public TensorSource {
 public:
  explicit GgufSource(const gguf::File& f) : f_(f) {}
  std::optional<Found> find(const std::string& name) const override {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    if (!t) return std::nullopt;
    const auto type = gguf::compute_type(t->type);
    if (!type)
      throw Error(f_.path() + ": tensor '" + name + "' has type " + gguf::type_name(t->type) +
                  ", which this build cannot compute yet (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K are)");
    return Found{name, *type, std::vector<int64_t>(t->dims.rbegin(), t->dims.rend()), t->data};
  }
  std::string where() const override { return f_.path(); }

 private:
  const gguf::File& f_;
};

class HfSource final : public TensorSource {
 public:
  HfSource(const SafetensorsModel& m, std::string dir) : m_(m), dir_(std::move(dir)) {}
  std::optional<Found> find(const std::string& name) const override {
    const SafeTensor* t = m_.find(name);
    if (!t) return std::nullopt;
    const WType type = t->dtype == DType::F32 ? WType::F32 : t->dtype == DType::F16 ? WType::F16 : WType::BF16;
    return Found{name, type, t->shape, t->data};
  }
  std::string where() const override { return dir_; }

 private:
  const SafetensorsModel& m_;
  std::string dir_;
};

struct Names {
  std::string embedding, output, output_norm;
  std::string attn_norm, ffn_norm, wq, wk, wv, wo, bq, bk, bv, gate, up, down;  // with {} for the layer index
};

const Names kGgufNames{"token_embd.weight", "output.weight", "output_norm.weight",
                       "blk.{}.attn_norm.weight", "blk.{}.ffn_norm.weight", "blk.{}.attn_q.weight",
                       "blk.{}.attn_k.weight", "blk.{}.attn_v.weight", "blk.{}.attn_output.weight",
                       "blk.{}.attn_q.bias", "blk.{}.attn_k.bias", "blk.{}.attn_v.bias",
                       "blk.{}.ffn_gate.weight", "blk.{}.ffn_up.weight", "blk.{}.ffn_down.weight"};
const Names kHfNames{"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
                     "model.layers.{}.input_layernorm.weight", "model.layers.{}.post_attention_layernorm.weight",
                     "model.layers.{}.self_attn.q_proj.weight", "model.layers.{}.self_attn.k_proj.weight",
                     "model.layers.{}.self_attn.v_proj.weight", "model.layers.{}.self_attn.o_proj.weight",
                     "model.layers.{}.self_attn.q_proj.bias", "model.layers.{}.self_attn.k_proj.bias",
                     "model.layers.{}.self_attn.v_proj.bias", "model.layers.{}.mlp.gate_proj.weight",
                     "model.layers.{}.mlp.up_proj.weight", "model.layers.{}.mlp.down_proj.weight"};

std::string at(const std::string& pattern, int64_t layer) {
  std::string s = pattern;
  s.replace(s.find("{}"), 2, std::to_string(layer));
  return s;
}

Weights map_weights(const TensorSource& src, const ModelConfig& c, const Names& n) {
  Weights w;
  const int64_t q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  w.embedding = src.matrix(n.embedding, c.vocab_size, c.hidden);
  w.output = src.find(n.output) ? src.matrix(n.output, c.vocab_size, c.hidden) : w.embedding;
  w.output_norm = src.vector(n.output_norm, c.hidden);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights l;
    l.attn_norm = src.vector(at(n.attn_norm, i), c.hidden);
    l.ffn_norm = src.vector(at(n.ffn_norm, i), c.hidden);
    l.wq = src.matrix(at(n.wq, i), q_dim, c.hidden);
    l.wk = src.matrix(at(n.wk, i), kv_dim, c.hidden);
    l.wv = src.matrix(at(n.wv, i), kv_dim, c.hidden);
    l.wo = src.matrix(at(n.wo, i), c.hidden, q_dim);
    if (c.attn_bias) {
      l.q_bias = src.vector(at(n.bq, i), q_dim);
      l.k_bias = src.vector(at(n.bk, i), kv_dim);
      l.v_bias = src.vector(at(n.bv, i), kv_dim);
    }
    l.w_gate = src.matrix(at(n.gate, i), c.ffn, c.hidden);
    l.w_up = src.matrix(at(n.up, i), c.ffn, c.hidden);
    l.w_down = src.matrix(at(n.down, i), c.hidden, c.ffn);
    w.layers.push_back(std::move(l));
  }
  return w;
}

// The matrices that only matrix products read (not the embedding, whose rows tokens look up, nor an
// output tied to it), rearranged in place into the layout this CPU's decode kernels read fastest
// (kernels::decode_layout): Q4_0 rows interleaved in eights where the CPU has AVX2. In the file's
// private copy, so never in a mapping.
void interleave_for_decode(Weights& w, gguf::File& file) {
  std::vector<MatrixView*> matrices;
  if (w.output.data != w.embedding.data) matrices.push_back(&w.output);
  for (LayerWeights& l : w.layers)
    for (MatrixView* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) matrices.push_back(m);
  std::erase_if(matrices, [](const MatrixView* m) { return kernels::decode_layout(m->type, m->rows) == m->type; });
  if (matrices.empty()) return;
  file.edit([&](std::span<uint8_t> bytes) {
    for (MatrixView* m : matrices) {
      uint8_t* at = bytes.data() + (static_cast<const uint8_t*>(m->data) - bytes.data());
      *m = kernels::interleave_for_decode(*m, at);
    }
  });
}

}  // namespace

Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& options) {
  std::unique_ptr<Model> m(new Model());
  m->path_ = path;
  if (fs::is_directory(path)) m->load_hf(options);
  else m->load_gguf(options);
  return m;
}

void Model::load_gguf(const LoadOptions& options) {
  format_ = "gguf";
  gguf_ = std::make_unique<gguf::File>(path_, options.weights);
  config_ = config_from_gguf(*gguf_);
  GgufSource src(*gguf_);
  if (auto f = src.find("rope_freqs.weight")) config_.rope.freq_factors = to_vector(*f);
  weights_ = map_weights(src, config_, kGgufNames);
  if (options.weights == FileResidency::HugePages) interleave_for_decode(weights_, *gguf_);
  tokenizer_ = tokenizer_from_gguf(*gguf_);
  for (const auto& t : gguf_->tensors())
    tensors_.push_back({t.name, gguf::type_name(t.type), std::vector<int64_t>(t.dims.rbegin(), t.dims.rend())});
  finish(options);
}

void Model::load_hf(const LoadOptions& options) {
  format_ = "hf";
  const fs::path dir(path_);
  const std::string config_path = (dir / "config.json").string();
  std::ifstream in(config_path);
  if (!in) throw Error(config_path + ": cannot open (an HF model directory needs config.json)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(config_path + ": not valid JSON: " + e.what());
  }
  config_ = config_from_hf(j, config_path);
  safetensors_ = std::make_unique<SafetensorsModel>(path_, options.weights);
  weights_ = map_weights(HfSource(*safetensors_, path_), config_, kHfNames);
  tokenizer_ = tokenizer_from_json_file((dir / "tokenizer.json").string());
  for (const auto& shard : safetensors_->shards())
    for (const auto& t : shard->tensors()) tensors_.push_back({t.name, dtype_name(t.dtype), t.shape});
  finish(options);
}

void Model::finish(const LoadOptions& options) {
  config_.apply(options.rope);
  config_.validate(path_);
  rope_ = rope_table(config_.rope, config_.head_dim, config_.context_length);
  if (tokenizer_->vocab_size() > config_.vocab_size)
    throw Error(path_ + ": the tokenizer has " + std::to_string(tokenizer_->vocab_size()) + " tokens but the model only " +
                std::to_string(config_.vocab_size) + " embeddings");
}

std::vector<int32_t> Model::stop_tokens() const {
  std::vector<int32_t> ids = config_.eos_ids;
  for (const char* t : {"<|eot_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>", "</s>", "<|eom_id|>"})
    if (auto id = tokenizer_->find(t)) ids.push_back(*id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace longqa
