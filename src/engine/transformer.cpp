// The forward pass of the Llama family (Llama-2/3/3.1, ChatQA-2, Mistral, Qwen2): pre-norm blocks of
// grouped-query attention with RoPE and a SwiGLU feed-forward, as HF transformers defines them.
#include "engine/transformer.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include <omp.h>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"
#include "util/error.h"

namespace longqa {

namespace k = kernels;

namespace {
// The KV-cache size a Session gets, checked before anything is allocated.
int64_t checked_context(const SessionOptions& o, const ModelConfig& c) {
  if (o.context > c.context_length)
    throw Error("context " + std::to_string(o.context) + " exceeds the model's " + std::to_string(c.context_length) +
                " positions; raise it with RoPE scaling options if the model supports it");
  return o.context > 0 ? o.context : c.context_length;
}

// fn(t) for each token of a chunk, split across the threads in a prompt's chunk (the per-token work
// between the matrix products would otherwise leave the other threads waiting); a single token, as
// in decoding, stays on the calling thread. fn touches only token t's rows.
template <class Fn>
void for_each_token(int threads, int64_t n, const Fn& fn) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && n > 1)
  for (int64_t t = 0; t < n; ++t) fn(t);
}
}  // namespace

Session::Session(const Model& model, const SessionOptions& o)
    : model_(model),
      c_(model.config()),
      batch_(std::max<int64_t>(1, o.batch)),
      threads_(o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
      cache_(c_.n_layers, c_.n_kv_heads, c_.head_dim, checked_context(o, c_), o.kv_type) {
  const auto b = static_cast<size_t>(batch_);
  const auto q_dim = static_cast<size_t>(c_.n_heads * c_.head_dim);
  const auto kv_dim = static_cast<size_t>(c_.n_kv_heads * c_.head_dim);
  x_.resize(b * static_cast<size_t>(c_.hidden));
  normed_.resize(x_.size());
  tmp_.resize(x_.size());
  q_.resize(b * q_dim);
  attn_.resize(b * q_dim);
  k_.resize(b * kv_dim);
  v_.resize(b * kv_dim);
  gate_.resize(b * static_cast<size_t>(c_.ffn));
  up_.resize(gate_.size());
  cos_.resize(b * static_cast<size_t>(c_.head_dim / 2));
  sin_.resize(cos_.size());
  logits_.resize(static_cast<size_t>(c_.vocab_size));
  // Quantized activations for the widest matrix input, so that decoding never grows the scratch.
  size_t act = 0;
  auto widest = [&](const k::MatrixView& m) { act = std::max(act, k::act_row_bytes(m.type, m.cols)); };
  widest(model.weights().output);
  for (const LayerWeights& l : model.weights().layers)
    for (const k::MatrixView* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) widest(*m);
  act_scratch_.resize(act * b);
  attention_scratch_.reserve(static_cast<size_t>(threads_));
  for (int i = 0; i < threads_; ++i) attention_scratch_.emplace_back(kTokenTile * (c_.n_heads / c_.n_kv_heads), c_.head_dim);
}

void Session::rewind(int64_t n) {
  if (n < 0 || n > position_) throw Error("cannot rewind to " + std::to_string(n) + " of " + std::to_string(position_) + " tokens");
  position_ = n;
  last_row_ = -1;
}

std::span<const float> Session::last_hidden() const {
  if (last_row_ < 0) throw Error("no token has been evaluated yet");
  return {normed_.data() + last_row_ * c_.hidden, static_cast<size_t>(c_.hidden)};
}

std::span<const float> Session::decode(std::span<const int32_t> tokens) {
  evaluate(tokens, nullptr, nullptr);
  k::matmul(model_.weights().output, last_hidden().data(), 1, logits_.data(), threads_, act_scratch_);
  return logits_;
}

void Session::evaluate(std::span<const int32_t> tokens, std::vector<float>* logits, std::vector<float>* hidden) {
  if (tokens.empty()) throw Error("nothing to evaluate: the token list is empty");
  if (static_cast<int64_t>(tokens.size()) > capacity() - position_)
    throw Error(std::to_string(tokens.size()) + " tokens do not fit: " + std::to_string(position_) + " of " +
                std::to_string(capacity()) + " context positions are used (raise --ctx)");
  for (int32_t t : tokens)
    if (t < 0 || t >= c_.vocab_size)
      throw Error("token id " + std::to_string(t) + " is outside the vocabulary (0.." + std::to_string(c_.vocab_size - 1) + ")");
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(batch_)) {
    const int64_t n = std::min<int64_t>(batch_, static_cast<int64_t>(tokens.size() - start));
    forward_chunk(tokens.data() + start, n);
    if (hidden) hidden->insert(hidden->end(), normed_.begin(), normed_.begin() + n * c_.hidden);
    if (logits) {
      const size_t at = logits->size();
      logits->resize(at + static_cast<size_t>(n * c_.vocab_size));
      k::matmul(model_.weights().output, normed_.data(), n, logits->data() + at, threads_, act_scratch_);
    }
  }
}

void Session::forward_chunk(const int32_t* tokens, int64_t n) {
  const Weights& w = model_.weights();
  const int64_t H = c_.hidden, hd = c_.head_dim, half = hd / 2;
  const int64_t q_dim = c_.n_heads * hd, kv_dim = c_.n_kv_heads * hd;
  const float eps = static_cast<float>(c_.rms_eps);

  for_each_token(threads_, n, [&](int64_t t) {
    k::to_f32(w.embedding.type, w.embedding.row(tokens[t]), x_.data() + t * H, H);
    // Angles in float32, as HF computes inv_freq @ position_ids, so long positions round alike.
    const float pos = static_cast<float>(position_ + t);
    const RopeTable& rope = model_.rope();
    for (int64_t i = 0; i < half; ++i) {
      const float angle = pos * rope.inv_freq[static_cast<size_t>(i)];
      cos_[static_cast<size_t>(t * half + i)] = std::cos(angle) * rope.attention_scaling;
      sin_[static_cast<size_t>(t * half + i)] = std::sin(angle) * rope.attention_scaling;
    }
  });

  for (int64_t l = 0; l < c_.n_layers; ++l) {
    const LayerWeights& lw = w.layers[static_cast<size_t>(l)];
    for_each_token(threads_, n, [&](int64_t t) {
      k::rms_norm(x_.data() + t * H, lw.attn_norm.data(), normed_.data() + t * H, H, eps);
    });
    const k::MatrixView qkv[] = {lw.wq, lw.wk, lw.wv};
    float* const qkv_out[] = {q_.data(), k_.data(), v_.data()};
    k::matmul_same_input(qkv, qkv_out, normed_.data(), n, threads_, act_scratch_);
    for_each_token(threads_, n, [&](int64_t t) {  // each token's cache rows are its own
      float* q = q_.data() + t * q_dim;
      float* kk = k_.data() + t * kv_dim;
      float* vv = v_.data() + t * kv_dim;
      if (c_.attn_bias) {
        k::add(q, lw.q_bias.data(), q_dim);
        k::add(kk, lw.k_bias.data(), kv_dim);
        k::add(vv, lw.v_bias.data(), kv_dim);
      }
      k::rope(q, c_.n_heads, hd, cos_.data() + t * half, sin_.data() + t * half, c_.rope.interleaved);
      k::rope(kk, c_.n_kv_heads, hd, cos_.data() + t * half, sin_.data() + t * half, c_.rope.interleaved);
      for (int64_t h = 0; h < c_.n_kv_heads; ++h) cache_.store(l, h, position_ + t, kk + h * hd, vv + h * hd);
    });
    attention(l, n);
    k::matmul(lw.wo, attn_.data(), n, tmp_.data(), threads_, act_scratch_);
    for_each_token(threads_, n, [&](int64_t t) {
      k::add(x_.data() + t * H, tmp_.data() + t * H, H);
      k::rms_norm(x_.data() + t * H, lw.ffn_norm.data(), normed_.data() + t * H, H, eps);
    });
    const k::MatrixView gate_up[] = {lw.w_gate, lw.w_up};
    float* const gate_up_out[] = {gate_.data(), up_.data()};
    k::matmul_same_input(gate_up, gate_up_out, normed_.data(), n, threads_, act_scratch_);
    for_each_token(threads_, n,
                   [&](int64_t t) { k::swiglu(gate_.data() + t * c_.ffn, up_.data() + t * c_.ffn, c_.ffn); });
    k::matmul(lw.w_down, gate_.data(), n, tmp_.data(), threads_, act_scratch_);
    for_each_token(threads_, n, [&](int64_t t) { k::add(x_.data() + t * H, tmp_.data() + t * H, H); });
  }
  for_each_token(threads_, n, [&](int64_t t) {
    k::rms_norm(x_.data() + t * H, w.output_norm.data(), normed_.data() + t * H, H, eps);
  });
  position_ += n;
  last_row_ = n - 1;
}

void Session::attention(int64_t layer, int64_t n) {
  const int64_t hd = c_.head_dim, group = c_.n_heads / c_.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t tiles = (n + kTokenTile - 1) / kTokenTile;
  // One task per (tile of tokens, KV head): its query heads share every key and value row it reads.
#pragma omp parallel for collapse(2) num_threads(threads_) schedule(dynamic, 1) if (threads_ > 1)
  for (int64_t tile = 0; tile < tiles; ++tile) {
    for (int64_t kvh = 0; kvh < c_.n_kv_heads; ++kvh) {
      const int64_t t0 = tile * kTokenTile, tokens = std::min(kTokenTile, n - t0);
      int64_t begin[kTokenTile], end[kTokenTile];
      for (int64_t t = 0; t < tokens; ++t) {
        const int64_t pos = position_ + t0 + t;
        end[t] = pos + 1;
        begin[t] = c_.sliding_window > 0 ? std::max<int64_t>(0, pos - c_.sliding_window + 1) : 0;
      }
      const size_t at = static_cast<size_t>((t0 * c_.n_heads + kvh * group) * hd);
      const k::QueryTile queries{q_.data() + at, attn_.data() + at, static_cast<size_t>(c_.n_heads * hd), tokens, group, begin, end};
      k::attend(queries, cache_.keys(layer, kvh, 0), cache_.values(layer, kvh, 0), hd, scale,
                attention_scratch_[static_cast<size_t>(omp_get_thread_num())]);
    }
  }
}

}  // namespace longqa
