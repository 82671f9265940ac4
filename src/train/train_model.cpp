#include "train/train_model.h"

#include <cmath>
#include <cstring>

#include "engine/convert.h"
#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/model.h"
#include "util/error.h"
#include "util/random.h"

namespace longqa::train {

void TrainConfig::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw Error("model shape: " + what);
  };
  need(vocab > 0 && hidden > 0 && layers > 0 && heads > 0 && kv_heads > 0 && ffn > 0 && context > 1, "every size must be positive");
  need(hidden % heads == 0 && head_dim() % 2 == 0, "hidden must be heads x an even head dimension");
  need(heads % kv_heads == 0, "heads must be a multiple of kv-heads");
  need(rope_theta > 0, "the RoPE base must be positive");
}

ModelConfig TrainConfig::model_config() const {
  ModelConfig m;
  m.arch = Arch::Llama;
  m.vocab_size = vocab;
  m.hidden = hidden;
  m.ffn = ffn;
  m.n_layers = layers;
  m.n_heads = heads;
  m.n_kv_heads = kv_heads;
  m.head_dim = head_dim();
  m.context_length = context;
  m.rms_eps = rms_eps;
  m.tied_embeddings = tied;
  m.rope.theta = rope_theta;
  m.rope.interleaved = true;
  m.bos_id = bos;
  if (eos >= 0) m.eos_ids = {eos};
  return m;
}

TrainModel::TrainModel(const TrainConfig& c) : c_(c) {
  c_.validate();
  const int64_t d = c.hidden, kv = c.kv_heads * c.head_dim();
  const int64_t per_layer = 2 * d + 2 * d * d + 2 * kv * d + 3 * c.ffn * d;
  const int64_t n = c.vocab * d * (c.tied ? 1 : 2) + d + c.layers * per_layer;
  params_.assign(static_cast<size_t>(n), 0.0f);
  grads_.assign(static_cast<size_t>(n), 0.0f);
}

ModelTensors<float*> TrainModel::layout(float* base) const {
  const int64_t d = c_.hidden, kv = c_.kv_heads * c_.head_dim();
  float* p = base;
  auto take = [&](int64_t n) {
    float* at = p;
    p += n;
    return at;
  };
  ModelTensors<float*> t;
  t.embedding = take(c_.vocab * d);
  for (int64_t l = 0; l < c_.layers; ++l) {
    LayerTensors<float*> L;
    L.attn_norm = take(d);
    L.wq = take(d * d);
    L.wk = take(kv * d);
    L.wv = take(kv * d);
    L.wo = take(d * d);
    L.ffn_norm = take(d);
    L.w_gate = take(c_.ffn * d);
    L.w_up = take(c_.ffn * d);
    L.w_down = take(d * c_.ffn);
    t.layers.push_back(L);
  }
  t.output_norm = take(d);
  t.output = c_.tied ? t.embedding : take(c_.vocab * d);
  return t;
}

ModelTensors<const float*> TrainModel::weights() const {
  const ModelTensors<float*> t = layout(const_cast<float*>(params_.data()));
  ModelTensors<const float*> c{t.embedding, t.output_norm, t.output, {}};
  for (const auto& L : t.layers)
    c.layers.push_back({L.attn_norm, L.wq, L.wk, L.wv, L.wo, L.ffn_norm, L.w_gate, L.w_up, L.w_down});
  return c;
}

void TrainModel::init_random(uint64_t seed) {
  // GPT-2's scheme: N(0, 0.02), the projections into the residual stream scaled by 1/sqrt(2 layers);
  // norms start at 1. Box–Muller over a counter-based stream: the same seed, the same model.
  Rng rng(seed, 0x696e6974ULL);
  auto normal = [&](float* x, int64_t n, double std) {
    for (int64_t i = 0; i < n; ++i) {
      const double u1 = std::max(rng.uniform(), 1e-300), u2 = rng.uniform();
      x[i] = static_cast<float>(std * std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2));
    }
  };
  const int64_t d = c_.hidden, kv = c_.kv_heads * c_.head_dim();
  const double std = 0.02, resid = 0.02 / std::sqrt(2.0 * static_cast<double>(c_.layers));
  ModelTensors<float*> t = weights();
  normal(t.embedding, c_.vocab * d, std);
  for (auto& L : t.layers) {
    std::fill(L.attn_norm, L.attn_norm + d, 1.0f);
    std::fill(L.ffn_norm, L.ffn_norm + d, 1.0f);
    normal(L.wq, d * d, std);
    normal(L.wk, kv * d, std);
    normal(L.wv, kv * d, std);
    normal(L.wo, d * d, resid);
    normal(L.w_gate, c_.ffn * d, std);
    normal(L.w_up, c_.ffn * d, std);
    normal(L.w_down, d * c_.ffn, resid);
  }
  std::fill(t.output_norm, t.output_norm + d, 1.0f);
  if (!c_.tied) normal(t.output, c_.vocab * d, std);
}

TrainModel TrainModel::from_gguf(const std::string& path, double rope_theta, int64_t context) {
  if (path.size() < 5 || path.substr(path.size() - 5) != ".gguf")
    throw Error(path + ": --init takes a GGUF file (convert an HF directory with `longqa convert` first)");
  const auto model = Model::load(path);
  const ModelConfig& m = model->config();
  if (m.arch != Arch::Llama || m.attn_bias || m.sliding_window > 0 || m.rope.scaling != RopeScaling::None ||
      m.head_dim * m.n_heads != m.hidden || !m.rope.interleaved)
    throw Error(path + ": the trainer continues plain Llama-architecture models only (no biases, sliding window or RoPE scaling)");
  TrainConfig c;
  c.vocab = m.vocab_size;
  c.hidden = m.hidden;
  c.layers = m.n_layers;
  c.heads = m.n_heads;
  c.kv_heads = m.n_kv_heads;
  c.ffn = m.ffn;
  c.context = std::max(context, m.context_length);
  c.rope_theta = rope_theta > 0 ? rope_theta : m.rope.theta;
  c.rms_eps = m.rms_eps;
  c.tied = m.tied_embeddings;
  c.bos = m.bos_id;
  c.eos = m.eos_ids.empty() ? -1 : m.eos_ids[0];
  TrainModel t(c);
  ModelTensors<float*> dst = t.weights();
  const Weights& w = model->weights();
  auto copy = [](const kernels::MatrixView& v, float* out) { kernels::to_f32(v, out); };
  copy(w.embedding, dst.embedding);
  if (!c.tied) copy(w.output, dst.output);
  std::memcpy(dst.output_norm, w.output_norm.data(), w.output_norm.size() * sizeof(float));
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& s = w.layers[l];
    LayerTensors<float*>& L = dst.layers[l];
    std::memcpy(L.attn_norm, s.attn_norm.data(), s.attn_norm.size() * sizeof(float));
    std::memcpy(L.ffn_norm, s.ffn_norm.data(), s.ffn_norm.size() * sizeof(float));
    copy(s.wq, L.wq);
    copy(s.wk, L.wk);
    copy(s.wv, L.wv);
    copy(s.wo, L.wo);
    copy(s.w_gate, L.w_gate);
    copy(s.w_up, L.w_up);
    copy(s.w_down, L.w_down);
  }
  return t;
}

void TrainModel::save_gguf(const std::string& path, const std::string& tokenizer, const std::string& name, int64_t step, int64_t averaged) const {
  using gguf::TensorType;
  const ModelConfig m = c_.model_config();
  gguf::Writer w;
  write_hparams(w, m, name);
  w.set("general.file_type", gguf::Value::u32(0));
  if (step >= 0) w.set("longqa.train.step", gguf::Value::u32(static_cast<uint32_t>(step)));
  if (averaged > 0) w.set("longqa.train.averaged_snapshots", gguf::Value::u32(static_cast<uint32_t>(averaged)));
  if (tokenizer.size() > 5 && tokenizer.substr(tokenizer.size() - 5) == ".gguf") {
    const gguf::File src(tokenizer);
    for (const auto& [key, value] : src.metadata())
      if (key.starts_with("tokenizer.")) w.set(key, value);
  } else {
    write_tokenizer(w, tokenizer, m);
  }
  const ModelTensors<const float*> t = weights();
  const int64_t d = c_.hidden, kv = c_.kv_heads * c_.head_dim();
  auto add = [&](const std::string& tensor, const float* data, std::vector<int64_t> dims) {
    int64_t n = 1;
    for (const int64_t x : dims) n *= x;
    w.add_tensor(tensor, TensorType::F32, std::move(dims),
                 std::span(reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(n) * sizeof(float)));
  };
  add("token_embd.weight", t.embedding, {d, c_.vocab});
  for (size_t l = 0; l < t.layers.size(); ++l) {
    const auto& L = t.layers[l];
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", L.attn_norm, {d});
    add(b + "attn_q.weight", L.wq, {d, d});
    add(b + "attn_k.weight", L.wk, {d, kv});
    add(b + "attn_v.weight", L.wv, {d, kv});
    add(b + "attn_output.weight", L.wo, {d, d});
    add(b + "ffn_norm.weight", L.ffn_norm, {d});
    add(b + "ffn_gate.weight", L.w_gate, {d, c_.ffn});
    add(b + "ffn_up.weight", L.w_up, {d, c_.ffn});
    add(b + "ffn_down.weight", L.w_down, {c_.ffn, d});
  }
  add("output_norm.weight", t.output_norm, {d});
  if (!c_.tied) add("output.weight", t.output, {d, c_.vocab});
  w.write(path);
}

}  // namespace longqa::train
