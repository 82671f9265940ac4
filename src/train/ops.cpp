#include "train/ops.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace longqa::train {

// The inner loops below are plain axpy/dot loops; these attributes compile them for AVX-512, AVX2 and
// the baseline, and the loader picks the widest the CPU has, so the binary stays portable.
#define LONGQA_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

namespace {

LONGQA_VECTOR_CLONES void axpy(float a, const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// y += a[0] x0 + a[1] x1 + a[2] x2 + a[3] x3: four products per load and store of y.
LONGQA_VECTOR_CLONES void axpy4(const float* a, const float* x0, const float* x1, const float* x2, const float* x3, float* y,
                                int64_t n) {
  const float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += a0 * x0[i] + a1 * x1[i] + a2 * x2[i] + a3 * x3[i];
}

LONGQA_VECTOR_CLONES float dot(const float* a, const float* b, int64_t n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

void linear_forward(const float* x, const float* w, float* y, int64_t n, int64_t in, int64_t out, int threads,
                    std::vector<float>& wt) {
  // y = x wᵀ as sums of rows of wᵀ (the backward's dx loop): four rows per pass over an output row.
  if (wt.size() < static_cast<size_t>(in * out)) wt.resize(static_cast<size_t>(in * out));
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < in; ++i)
    for (int64_t o = 0; o < out; ++o) wt[static_cast<size_t>(i * out + o)] = w[o * in + i];
  constexpr int64_t kTokens = 8;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t t0 = 0; t0 < n; t0 += kTokens) {
    const int64_t t1 = std::min(n, t0 + kTokens);
    std::fill(y + t0 * out, y + t1 * out, 0.0f);
    int64_t i = 0;
    for (; i + 4 <= in; i += 4)
      for (int64_t t = t0; t < t1; ++t) {
        const float* wi = wt.data() + i * out;
        axpy4(x + t * in + i, wi, wi + out, wi + 2 * out, wi + 3 * out, y + t * out, out);
      }
    for (; i < in; ++i)
      for (int64_t t = t0; t < t1; ++t) axpy(x[t * in + i], wt.data() + i * out, y + t * out, out);
  }
}

void linear_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, int64_t n, int64_t in, int64_t out,
                     int threads) {
  // Blocks keep a few weight rows (dx) or gradient rows (dw) hot in L1 while tokens stream past, and
  // four rows are combined per pass over the output row.
  constexpr int64_t kTokens = 8, kRows = 16;
  if (dx) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t t0 = 0; t0 < n; t0 += kTokens) {
      const int64_t t1 = std::min(n, t0 + kTokens);
      int64_t o = 0;
      for (; o + 4 <= out; o += 4)
        for (int64_t t = t0; t < t1; ++t)
          axpy4(dy + t * out + o, w + o * in, w + (o + 1) * in, w + (o + 2) * in, w + (o + 3) * in, dx + t * in, in);
      for (; o < out; ++o)
        for (int64_t t = t0; t < t1; ++t) axpy(dy[t * out + o], w + o * in, dx + t * in, in);
    }
  }
#pragma omp parallel num_threads(threads)
  {
    float a[4];
#pragma omp for schedule(static)
    for (int64_t o0 = 0; o0 < out; o0 += kRows) {
      const int64_t o1 = std::min(out, o0 + kRows);
      int64_t t = 0;
      for (; t + 4 <= n; t += 4)
        for (int64_t o = o0; o < o1; ++o) {
          for (int k = 0; k < 4; ++k) a[k] = dy[(t + k) * out + o];
          axpy4(a, x + t * in, x + (t + 1) * in, x + (t + 2) * in, x + (t + 3) * in, dw + o * in, in);
        }
      for (; t < n; ++t)
        for (int64_t o = o0; o < o1; ++o) axpy(dy[t * out + o], x + t * in, dw + o * in, in);
    }
  }
}

void rmsnorm_forward(const float* x, const float* g, float* y, float* rstd, int64_t n, int64_t d, float eps) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xr = x + t * d;
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const auto r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps));
    rstd[t] = r;
    for (int64_t i = 0; i < d; ++i) y[t * d + i] = xr[i] * r * g[i];
  }
}

void rmsnorm_backward(const float* x, const float* g, const float* rstd, const float* dy, float* dx, float* dg, int64_t n,
                      int64_t d) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xr = x + t * d;
    const float* dyr = dy + t * d;
    const float r = rstd[t];
    // y_i = x_i r g_i with r = (mean x² + eps)^-1/2:  dx_i = r g_i dy_i - x_i r³ / d * sum_j dy_j g_j x_j
    double s = 0;
    for (int64_t i = 0; i < d; ++i) s += static_cast<double>(dyr[i]) * g[i] * xr[i];
    const auto c = static_cast<float>(s * r * r * r / static_cast<double>(d));
    for (int64_t i = 0; i < d; ++i) {
      dx[t * d + i] += r * g[i] * dyr[i] - xr[i] * c;
      dg[i] += dyr[i] * xr[i] * r;
    }
  }
}

namespace {

void rope(float* x, int64_t seqs, int64_t t, int64_t heads, int64_t head_dim, const float* inv_freq, float sign) {
  const int64_t half = head_dim / 2;
  for (int64_t s = 0; s < seqs; ++s)
    for (int64_t p = 0; p < t; ++p) {
      float* row = x + (s * t + p) * heads * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(p) * inv_freq[i];
        const auto c = static_cast<float>(std::cos(angle)), sn = sign * static_cast<float>(std::sin(angle));
        for (int64_t h = 0; h < heads; ++h) {
          float* pair = row + h * head_dim + 2 * i;
          const float a = pair[0], b = pair[1];
          pair[0] = a * c - b * sn;
          pair[1] = a * sn + b * c;
        }
      }
    }
}

}  // namespace

void rope_forward(float* x, int64_t seqs, int64_t t, int64_t heads, int64_t head_dim, const float* inv_freq) {
  rope(x, seqs, t, heads, head_dim, inv_freq, 1.0f);
}
void rope_backward(float* dx, int64_t seqs, int64_t t, int64_t heads, int64_t head_dim, const float* inv_freq) {
  rope(dx, seqs, t, heads, head_dim, inv_freq, -1.0f);
}

void attention_forward(const float* q, const float* k, const float* v, float* out, float* lse, const AttentionShape& s,
                       int threads, std::vector<float>& scratch) {
  const int64_t hd = s.head_dim, qs = s.heads * hd, ks = s.kv_heads * hd, group = s.heads / s.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  if (scratch.size() < static_cast<size_t>(threads * s.t)) scratch.resize(static_cast<size_t>(threads * s.t));
#pragma omp parallel num_threads(threads)
  {
    float* scores = scratch.data() + static_cast<int64_t>(omp_get_thread_num()) * s.t;  // this thread's row of scores
#pragma omp for schedule(dynamic, 4) collapse(2)
    for (int64_t sh = 0; sh < s.seqs * s.heads; ++sh)
      for (int64_t i = 0; i < s.t; ++i) {
        const int64_t seq = sh / s.heads, h = sh % s.heads, kvh = h / group;
        const int64_t row = seq * s.t + i;
        const float* qi = q + row * qs + h * hd;
        const int64_t first = s.first(row);
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t j = first; j <= i; ++j) {
          scores[j] = scale * dot(qi, k + (seq * s.t + j) * ks + kvh * hd, hd);
          m = std::max(m, scores[j]);
        }
        float* o = out + row * qs + h * hd;
        std::fill(o, o + hd, 0.0f);
        double sum = 0;
        for (int64_t j = first; j <= i; ++j) {
          const float p = std::exp(scores[j] - m);
          sum += p;
          axpy(p, v + (seq * s.t + j) * ks + kvh * hd, o, hd);
        }
        const auto inv = static_cast<float>(1.0 / sum);
        for (int64_t d = 0; d < hd; ++d) o[d] *= inv;
        lse[row * s.heads + h] = m + static_cast<float>(std::log(sum));
      }
  }
}

void attention_backward(const float* q, const float* k, const float* v, const float* out, const float* lse, const float* dout,
                        float* dq, float* dk, float* dv, const AttentionShape& s, int threads) {
  const int64_t hd = s.head_dim, qs = s.heads * hd, ks = s.kv_heads * hd, group = s.heads / s.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // One task per (sequence, key/value head): the query heads of a group all write into its dk and dv.
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t sg = 0; sg < s.seqs * s.kv_heads; ++sg) {
    const int64_t seq = sg / s.kv_heads, kvh = sg % s.kv_heads;
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
      for (int64_t i = 0; i < s.t; ++i) {
        const int64_t row = seq * s.t + i;
        const float* qi = q + row * qs + h * hd;
        const float* doi = dout + row * qs + h * hd;
        float* dqi = dq + row * qs + h * hd;
        const float delta = dot(doi, out + row * qs + h * hd, hd);
        const float l = lse[row * s.heads + h];
        for (int64_t j = s.first(row); j <= i; ++j) {
          const int64_t col = (seq * s.t + j) * ks + kvh * hd;
          const float p = std::exp(scale * dot(qi, k + col, hd) - l);
          axpy(p, doi, dv + col, hd);
          const float ds = p * (dot(doi, v + col, hd) - delta) * scale;
          axpy(ds, k + col, dqi, hd);
          axpy(ds, qi, dk + col, hd);
        }
      }
  }
}

void swiglu_forward(const float* gate, const float* up, float* h, int64_t n) {
  for (int64_t i = 0; i < n; ++i) h[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void swiglu_backward(const float* gate, const float* up, const float* dh, float* dgate, float* dup, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float sig = 1.0f / (1.0f + std::exp(-gate[i]));
    const float silu = gate[i] * sig;
    dup[i] += dh[i] * silu;
    dgate[i] += dh[i] * up[i] * sig * (1.0f + gate[i] * (1.0f - sig));
  }
}

double cross_entropy(const float* logits, const int32_t* targets, const uint8_t* mask, int64_t n, int64_t vocab, float* dlogits,
                     float scale, int64_t& counted, int threads) {
  counted = 0;
  for (int64_t t = 0; t < n; ++t) counted += mask[t] != 0;
  double total = 0;
  const double per = counted ? 1.0 / static_cast<double>(counted) : 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) num_threads(threads)
  for (int64_t t = 0; t < n; ++t) {
    const float* z = logits + t * vocab;
    float* dz = dlogits ? dlogits + t * vocab : nullptr;
    if (!mask[t]) {
      if (dz) std::fill(dz, dz + vocab, 0.0f);
      continue;
    }
    const float m = *std::max_element(z, z + vocab);
    float sum = 0;  // float exponentials: the vocabulary-wide softmax is the loss's hot loop
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(z[i] - m);
    const float log_sum = std::log(sum) + m;
    total += static_cast<double>(log_sum - z[targets[t]]);
    if (dz) {
      const auto g = static_cast<float>(per * scale);
      for (int64_t i = 0; i < vocab; ++i) dz[i] = g * std::exp(z[i] - log_sum);
      dz[targets[t]] -= g;
    }
  }
  return total * per;
}

}  // namespace longqa::train
