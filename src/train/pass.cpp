#include "train/pass.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "train/attention.h"
#include "train/ops.h"

namespace longqa::train {

namespace {
size_t sz(int64_t n) { return static_cast<size_t>(n); }

// The pass's elementwise work, split across the threads like the ops (the other thread would only wait).
void zero(std::vector<float>& v, int threads) {
  const auto n = static_cast<int64_t>(v.size());
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) v[sz(i)] = 0.0f;
}
void copy(const std::vector<float>& from, std::vector<float>& to, int threads) {
  const auto n = static_cast<int64_t>(from.size());
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) to[sz(i)] = from[sz(i)];
}
void add_into(float* y, const float* x, int64_t n, int threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}
}  // namespace

Pass::Pass(const TrainConfig& c, int64_t seqs, int64_t t) : c_(c), seqs_(seqs), t_(t), n_(seqs * t) {
  const int64_t d = c.hidden, kv = c.kv_heads * c.head_dim(), f = c.ffn, n = n_;
  const int64_t half = c.head_dim() / 2;
  for (int64_t i = 0; i < half; ++i)
    inv_freq_.push_back(static_cast<float>(std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(c.head_dim()))));
  layers_.resize(sz(c.layers));
  for (Layer& L : layers_) {
    for (auto* v : {&L.x, &L.xn1, &L.q, &L.att, &L.x2, &L.xn2}) v->resize(sz(n * d));
    for (auto* v : {&L.k, &L.v}) v->resize(sz(n * kv));
    for (auto* v : {&L.gate, &L.up, &L.h}) v->resize(sz(n * f));
    L.rstd1.resize(sz(n));
    L.rstd2.resize(sz(n));
    L.lse.resize(sz(n * c.heads));
  }
  x_final_.resize(sz(n * d));
  xn_final_.resize(sz(n * d));
  rstd_final_.resize(sz(n));
  logits_.resize(sz(n * c.vocab));
  for (auto* v : {&dx_, &dx2_, &dxn_, &dq_, &datt_}) v->resize(sz(n * d));
  for (auto* v : {&dk_, &dv_}) v->resize(sz(n * kv));
  for (auto* v : {&dh_, &dgate_, &dup_}) v->resize(sz(n * f));
}

double Pass::forward(const TrainModel& m, const int32_t* inputs, const int32_t* targets, const uint8_t* mask, const int32_t* first_key,
                     int threads) {
  const TrainConfig& c = c_;
  const int64_t d = c.hidden, hd = c.head_dim(), kv = c.kv_heads * hd, f = c.ffn, n = n_;
  const ModelTensors<const float*> w = m.weights();
  const AttentionShape shape{seqs_, t_, c.heads, c.kv_heads, hd, first_key};
  const auto eps = static_cast<float>(c.rms_eps);
  float* x = layers_.empty() ? x_final_.data() : layers_[0].x.data();
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) std::copy_n(w.embedding + static_cast<int64_t>(inputs[i]) * d, d, x + i * d);
  for (size_t l = 0; l < layers_.size(); ++l) {
    Layer& L = layers_[l];
    const LayerTensors<const float*>& W = w.layers[l];
    rmsnorm_forward(L.x.data(), W.attn_norm, L.xn1.data(), L.rstd1.data(), n, d, eps, threads);
    linear_forward(L.xn1.data(), W.wq, L.q.data(), n, d, d, threads, scratch_);
    linear_forward(L.xn1.data(), W.wk, L.k.data(), n, d, kv, threads, scratch_);
    linear_forward(L.xn1.data(), W.wv, L.v.data(), n, d, kv, threads, scratch_);
    rope_forward(L.q.data(), seqs_, t_, c.heads, hd, inv_freq_.data(), threads);
    rope_forward(L.k.data(), seqs_, t_, c.kv_heads, hd, inv_freq_.data(), threads);
    attention_forward(L.q.data(), L.k.data(), L.v.data(), L.att.data(), L.lse.data(), shape, threads, scratch_);
    linear_forward(L.att.data(), W.wo, L.x2.data(), n, d, d, threads, scratch_);
    add_into(L.x2.data(), L.x.data(), n * d, threads);
    rmsnorm_forward(L.x2.data(), W.ffn_norm, L.xn2.data(), L.rstd2.data(), n, d, eps, threads);
    linear_forward(L.xn2.data(), W.w_gate, L.gate.data(), n, d, f, threads, scratch_);
    linear_forward(L.xn2.data(), W.w_up, L.up.data(), n, d, f, threads, scratch_);
    swiglu_forward(L.gate.data(), L.up.data(), L.h.data(), n * f, threads);
    float* next = l + 1 < layers_.size() ? layers_[l + 1].x.data() : x_final_.data();
    linear_forward(L.h.data(), W.w_down, next, n, f, d, threads, scratch_);
    add_into(next, L.x2.data(), n * d, threads);
  }
  rmsnorm_forward(x_final_.data(), w.output_norm, xn_final_.data(), rstd_final_.data(), n, d, eps, threads);
  linear_forward(xn_final_.data(), w.output, logits_.data(), n, d, c.vocab, threads, scratch_);
  targets_ = targets;
  mask_ = mask;
  first_key_ = first_key;
  return cross_entropy(logits_.data(), targets, mask, n, c.vocab, nullptr, 1.0f, counted_, threads);
}

void Pass::backward(TrainModel& m, const int32_t* inputs, float scale, int threads) {
  const TrainConfig& c = c_;
  const int64_t d = c.hidden, hd = c.head_dim(), kv = c.kv_heads * hd, f = c.ffn, n = n_;
  const ModelTensors<const float*> w = std::as_const(m).weights();
  ModelTensors<float*> g = m.gradients();
  const AttentionShape shape{seqs_, t_, c.heads, c.kv_heads, hd, first_key_};

  int64_t counted = 0;
  cross_entropy(logits_.data(), targets_, mask_, n, c.vocab, logits_.data(), scale, counted, threads);  // in place
  zero(dxn_, threads);
  linear_backward(xn_final_.data(), w.output, logits_.data(), dxn_.data(), g.output, n, d, c.vocab, threads);
  zero(dx_, threads);
  rmsnorm_backward(x_final_.data(), w.output_norm, rstd_final_.data(), dxn_.data(), dx_.data(), g.output_norm, n, d,
                   threads);
  for (size_t l = layers_.size(); l-- > 0;) {
    Layer& L = layers_[l];
    const LayerTensors<const float*>& W = w.layers[l];
    LayerTensors<float*>& G = g.layers[l];
    // The feed-forward half: x_next = x2 + down(swiglu(gate(xn2), up(xn2))).
    zero(dh_, threads);
    linear_backward(L.h.data(), W.w_down, dx_.data(), dh_.data(), G.w_down, n, f, d, threads);
    zero(dgate_, threads);
    zero(dup_, threads);
    swiglu_backward(L.gate.data(), L.up.data(), dh_.data(), dgate_.data(), dup_.data(), n * f, threads);
    zero(dxn_, threads);
    linear_backward(L.xn2.data(), W.w_gate, dgate_.data(), dxn_.data(), G.w_gate, n, d, f, threads);
    linear_backward(L.xn2.data(), W.w_up, dup_.data(), dxn_.data(), G.w_up, n, d, f, threads);
    copy(dx_, dx2_, threads);
    rmsnorm_backward(L.x2.data(), W.ffn_norm, L.rstd2.data(), dxn_.data(), dx2_.data(), G.ffn_norm, n, d, threads);
    // The attention half: x2 = x + wo(attention(rope(wq xn1), rope(wk xn1), wv xn1)).
    zero(datt_, threads);
    linear_backward(L.att.data(), W.wo, dx2_.data(), datt_.data(), G.wo, n, d, d, threads);
    zero(dq_, threads);
    zero(dk_, threads);
    zero(dv_, threads);
    attention_backward(L.q.data(), L.k.data(), L.v.data(), L.att.data(), L.lse.data(), datt_.data(), dq_.data(), dk_.data(),
                       dv_.data(), shape, threads, scratch_);
    rope_backward(dq_.data(), seqs_, t_, c.heads, hd, inv_freq_.data(), threads);
    rope_backward(dk_.data(), seqs_, t_, c.kv_heads, hd, inv_freq_.data(), threads);
    zero(dxn_, threads);
    linear_backward(L.xn1.data(), W.wq, dq_.data(), dxn_.data(), G.wq, n, d, d, threads);
    linear_backward(L.xn1.data(), W.wk, dk_.data(), dxn_.data(), G.wk, n, d, kv, threads);
    linear_backward(L.xn1.data(), W.wv, dv_.data(), dxn_.data(), G.wv, n, d, kv, threads);
    copy(dx2_, dx_, threads);
    rmsnorm_backward(L.x.data(), W.attn_norm, L.rstd1.data(), dxn_.data(), dx_.data(), G.attn_norm, n, d, threads);
  }
  for (int64_t i = 0; i < n; ++i) {
    float* row = g.embedding + static_cast<int64_t>(inputs[i]) * d;
    for (int64_t k = 0; k < d; ++k) row[k] += dx_[sz(i * d + k)];
  }
}

}  // namespace longqa::train
