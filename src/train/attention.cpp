#include "train/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "train/vector_clones.h"

namespace longqa::train {

namespace {

constexpr int64_t kKeys = 64;  // keys per tile
constexpr int64_t kRows = 4;   // query rows per pass over a tile (the tile kernels below are written for 4)
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// y[r] += c[r] x for four rows: each load of x feeds four products. Inlined into the callers' clones.
inline void axpy_rows(const float (&c)[kRows], const float* x, float* const* y, int64_t n) {
  float *y0 = y[0], *y1 = y[1], *y2 = y[2], *y3 = y[3];
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    y0[i] += c[0] * x[i];
    y1[i] += c[1] * x[i];
    y2[i] += c[2] * x[i];
    y3[i] += c[3] * x[i];
  }
}

constexpr int64_t kVecs = kKeys / 16;  // a tile row of keys, or 64 elements of a head, in registers

using i16 = int32_t __attribute__((vector_size(64)));

// exp on 16 lanes, inlined into the callers' clones (glibc's expf vectorises only under -ffast-math):
// Cody-Waite reduction and Cephes' degree-5 polynomial, relative error below 2e-7; inputs clamped to
// [-87, 88].
[[gnu::always_inline]] inline v16 exp16(v16 x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const v16 t = x * 1.44269504f + 0.5f;
  i16 n = __builtin_convertvector(t, i16);          // truncates: one less where t is negative and not whole
  n += __builtin_convertvector(n, v16) > t;          // true is -1
  const v16 nf = __builtin_convertvector(n, v16);
  const v16 r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
  v16 p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  v16 two_n;
  const i16 bits = (n + 127) << 23;
  std::memcpy(&two_n, &bits, sizeof two_n);
  return (p * r * r + r + 1.0f) * two_n;
}

// Lanes j0 .. j0 + 15 that lie in [lo, hi].
[[gnu::always_inline]] inline i16 lanes_in(int64_t j0, int64_t lo, int64_t hi) {
  constexpr i16 kIota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const i16 j = kIota + static_cast<int32_t>(j0);
  return (j >= static_cast<int32_t>(lo)) & (j <= static_cast<int32_t>(hi));
}

// s[r][j] = a[r] . bt[:, j] for four rows and the n columns of a tile stored transposed (bt[d * stride
// + j]): the key index runs across SIMD lanes, with no horizontal sums. A whole tile keeps its 4 x 64
// sums in registers over d; a partial one (the last of a causal row) goes through memory.
LONGQA_VECTOR_CLONES void tile_dots(const float* const* a, const float* bt, int64_t stride, int64_t hd, int64_t n, float* s) {
  if (n == kKeys) {
    v16 acc[kRows][kVecs] = {};
    for (int64_t d = 0; d < hd; ++d) {
      v16 b[kVecs];
      for (int64_t v = 0; v < kVecs; ++v) b[v] = load16(bt + d * stride + 16 * v);
      for (int64_t r = 0; r < kRows; ++r) {
        const float ar = a[r][d];
        for (int64_t v = 0; v < kVecs; ++v) acc[r][v] += ar * b[v];
      }
    }
    for (int64_t r = 0; r < kRows; ++r)
      for (int64_t v = 0; v < kVecs; ++v) store16(s + r * kKeys + 16 * v, acc[r][v]);
    return;
  }
  float* const rows[kRows] = {s, s + kKeys, s + 2 * kKeys, s + 3 * kKeys};
  std::fill(s, s + kRows * kKeys, 0.0f);
  for (int64_t d = 0; d < hd; ++d) axpy_rows({a[0][d], a[1][d], a[2][d], a[3][d]}, bt + d * stride, rows, n);
}

// o[r] += sum_j p[r][j] x[j] for four rows, x[j] at x + j * stride. Heads of a multiple of 64 keep each
// 64-element slice of the four sums in registers over the tile.
LONGQA_VECTOR_CLONES void tile_mix(const float* p, const float* x, int64_t stride, int64_t hd, int64_t n, float* const* o) {
  if (hd % (16 * kVecs) == 0) {
    for (int64_t d0 = 0; d0 < hd; d0 += 16 * kVecs) {
      v16 acc[kRows][kVecs] = {};
      for (int64_t j = 0; j < n; ++j) {
        v16 xv[kVecs];
        for (int64_t v = 0; v < kVecs; ++v) xv[v] = load16(x + j * stride + d0 + 16 * v);
        for (int64_t r = 0; r < kRows; ++r) {
          const float pr = p[r * kKeys + j];
          for (int64_t v = 0; v < kVecs; ++v) acc[r][v] += pr * xv[v];
        }
      }
      for (int64_t r = 0; r < kRows; ++r)
        for (int64_t v = 0; v < kVecs; ++v) add16(o[r] + d0 + 16 * v, acc[r][v]);
    }
    return;
  }
  for (int64_t j = 0; j < n; ++j) axpy_rows({p[j], p[kKeys + j], p[2 * kKeys + j], p[3 * kKeys + j]}, x + j * stride, o, hd);
}

// acc[j] += sum_r p[r][j] y[r] for the n rows of a tile's gradient sums (hd floats each). Heads of a
// multiple of 64 hold each 64-element slice of the four y rows in registers over the tile.
LONGQA_VECTOR_CLONES void tile_outer(const float* p, const float* const* y, int64_t hd, int64_t n, float* acc) {
  if (hd % (16 * kVecs) == 0) {
    for (int64_t d0 = 0; d0 < hd; d0 += 16 * kVecs) {
      v16 yv[kRows][kVecs];
      for (int64_t r = 0; r < kRows; ++r)
        for (int64_t v = 0; v < kVecs; ++v) yv[r][v] = load16(y[r] + d0 + 16 * v);
      for (int64_t j = 0; j < n; ++j) {
        const float p0 = p[j], p1 = p[kKeys + j], p2 = p[2 * kKeys + j], p3 = p[3 * kKeys + j];
        for (int64_t v = 0; v < kVecs; ++v)
          add16(acc + j * hd + d0 + 16 * v, p0 * yv[0][v] + p1 * yv[1][v] + p2 * yv[2][v] + p3 * yv[3][v]);
      }
    }
    return;
  }
  const float *y0 = y[0], *y1 = y[1], *y2 = y[2], *y3 = y[3];
  for (int64_t j = 0; j < n; ++j) {
    float* aj = acc + j * hd;
    const float a0 = p[j], a1 = p[kKeys + j], a2 = p[2 * kKeys + j], a3 = p[3 * kKeys + j];
#pragma omp simd
    for (int64_t d = 0; d < hd; ++d) aj[d] += a0 * y0[d] + a1 * y1[d] + a2 * y2[d] + a3 * y3[d];
  }
}

// p[j] = exp(scale p[j] - shift) on [lo, hi], 0 elsewhere in [0, n); returns the sum. p is a tile row
// (kKeys floats), taken 16 lanes at a time.
LONGQA_VECTOR_CLONES float exp_row(float* p, int64_t n, int64_t lo, int64_t hi, float scale, float shift) {
  v16 sum = {};
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const v16 e = lanes_in(j0, lo, hi) ? exp16(scale * load16(p + j0) - shift) : v16{};
    store16(p + j0, e);
    sum += e;
  }
  float total = 0;
  for (int i = 0; i < 16; ++i) total += sum[i];
  return total;
}

// From scores s and dp = dout . v: s[j] = P = exp(scale s - lse) and dp[j] = dS = P (dp - delta) scale
// on [lo, hi], 0 elsewhere; s and dp are tile rows (kKeys floats).
LONGQA_VECTOR_CLONES void grad_row(float* s, float* dp, int64_t n, int64_t lo, int64_t hi, float scale, float lse, float delta) {
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const v16 p = lanes_in(j0, lo, hi) ? exp16(scale * load16(s + j0) - lse) : v16{};
    const v16 ds = p * (load16(dp + j0) - delta) * scale;
    store16(s + j0, p);
    store16(dp + j0, ds);
  }
}

LONGQA_VECTOR_CLONES float dot(const float* a, const float* b, int64_t n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// xt holds each (sequence, kv head)'s rows transposed: plane [hd][t] at (seq * kv_heads + h) * hd * t.
void transpose_heads(const float* x, const AttentionShape& s, float* xt, int threads) {
  const int64_t hd = s.head_dim, ks = s.kv_heads * hd;
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
  for (int64_t seq = 0; seq < s.seqs; ++seq)
    for (int64_t h = 0; h < s.kv_heads; ++h) {
      float* plane = xt + (seq * s.kv_heads + h) * hd * s.t;
      // 16 positions at a time: each element of the plane's rows written is a whole cache line's worth.
      for (int64_t j0 = 0; j0 < s.t; j0 += 16)
        for (int64_t d = 0; d < hd; ++d)
          for (int64_t j = j0; j < std::min(j0 + 16, s.t); ++j)
            plane[d * s.t + j] = x[(seq * s.t + j) * ks + h * hd + d];
    }
}

// The part [lo, hi] of a tile of n keys from j0 that the query at position i (row `row`) sees; empty
// (lo > hi) when it sees none, or when the row lies past the sequence's end.
struct Visible {
  int64_t lo = 0, hi = -1;
};
Visible visible(const AttentionShape& s, bool in_sequence, int64_t row, int64_t i, int64_t j0, int64_t n) {
  if (!in_sequence) return {};
  return {std::max<int64_t>(s.first(row) - j0, 0), std::min(i - j0, n - 1)};
}

}  // namespace

void attention_forward(const float* q, const float* k, const float* v, float* out, float* lse, const AttentionShape& s,
                       int threads, std::vector<float>& scratch) {
  const int64_t hd = s.head_dim, qs = s.heads * hd, ks = s.kv_heads * hd, group = s.heads / s.kv_heads, plane = s.t * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t planes = s.seqs * s.kv_heads * plane, per_thread = kRows * kKeys + kRows * hd + hd;
  if (scratch.size() < static_cast<size_t>(planes + threads * per_thread))
    scratch.resize(static_cast<size_t>(planes + threads * per_thread));
  float* kt = scratch.data();
  transpose_heads(k, s, kt, threads);
  const int64_t groups = (s.t + kRows - 1) / kRows;
#pragma omp parallel num_threads(threads)
  {
    float* p = kt + planes + omp_get_thread_num() * per_thread;  // [kRows][kKeys] scores, then probabilities
    float* sums = p + kRows * kKeys;                               // [kRows][hd] unnormalised outputs
    float* zero = sums + kRows * hd;                               // the query of a row past the end
    std::fill(zero, zero + hd, 0.0f);
#pragma omp for schedule(dynamic, 8)
    for (int64_t task = 0; task < s.seqs * s.heads * groups; ++task) {
      const int64_t sh = task / groups, i0 = task % groups * kRows, seq = sh / s.heads, h = sh % s.heads, kvh = h / group;
      const int64_t rows = std::min(kRows, s.t - i0), base = seq * s.t, last = i0 + rows - 1;
      const float* qr[kRows];
      float* o[kRows];
      float m[kRows], l[kRows];
      for (int64_t r = 0; r < kRows; ++r) {
        qr[r] = r < rows ? q + (base + i0 + r) * qs + h * hd : zero;
        o[r] = sums + r * hd;
        m[r] = kNegInf;
        l[r] = 0;
      }
      std::fill(sums, sums + kRows * hd, 0.0f);
      const float* ktp = kt + (seq * s.kv_heads + kvh) * plane;
      for (int64_t j0 = s.first(base + i0); j0 <= last; j0 += kKeys) {
        const int64_t n = std::min(kKeys, last + 1 - j0);
        tile_dots(qr, ktp + j0, s.t, hd, n, p);
        for (int64_t r = 0; r < kRows; ++r) {
          float* pr = p + r * kKeys;
          const Visible vis = visible(s, r < rows, base + i0 + r, i0 + r, j0, n);
          if (vis.lo > vis.hi) {
            std::fill(pr, pr + n, 0.0f);
            continue;
          }
          float mx = kNegInf;
          for (int64_t j = vis.lo; j <= vis.hi; ++j) mx = std::max(mx, scale * pr[j]);
          const float m_new = std::max(m[r], mx), correction = std::exp(m[r] - m_new);
          if (correction != 1.0f)
            for (int64_t d = 0; d < hd; ++d) o[r][d] *= correction;
          l[r] = l[r] * correction + exp_row(pr, n, vis.lo, vis.hi, scale, m_new);
          m[r] = m_new;
        }
        tile_mix(p, v + (base + j0) * ks + kvh * hd, ks, hd, n, o);
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t row = base + i0 + r;
        const float inv = 1.0f / l[r];
        for (int64_t d = 0; d < hd; ++d) out[row * qs + h * hd + d] = o[r][d] * inv;
        lse[row * s.heads + h] = m[r] + std::log(l[r]);
      }
    }
  }
}

void attention_backward(const float* q, const float* k, const float* v, const float* out, const float* lse, const float* dout,
                        float* dq, float* dk, float* dv, const AttentionShape& s, int threads, std::vector<float>& scratch) {
  const int64_t hd = s.head_dim, qs = s.heads * hd, ks = s.kv_heads * hd, group = s.heads / s.kv_heads, plane = s.t * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t n_rows = s.seqs * s.t, planes = s.seqs * s.kv_heads * plane;
  const int64_t shared = 2 * planes + n_rows * s.heads;
  const int64_t per_thread = n_rows * qs + 2 * kRows * kKeys + 2 * kKeys * hd + 2 * hd;
  if (scratch.size() < static_cast<size_t>(shared + threads * per_thread))
    scratch.resize(static_cast<size_t>(shared + threads * per_thread));
  float *kt = scratch.data(), *vt = kt + planes, *delta = vt + planes;
  transpose_heads(k, s, kt, threads);
  transpose_heads(v, s, vt, threads);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t row = 0; row < n_rows; ++row)
    for (int64_t h = 0; h < s.heads; ++h) delta[row * s.heads + h] = dot(dout + row * qs + h * hd, out + row * qs + h * hd, hd);

  const int64_t tiles = (s.t + kKeys - 1) / kKeys;
  int team = 1;
#pragma omp parallel num_threads(threads)
  {
#pragma omp single
    team = omp_get_num_threads();
    float* dq_sum = delta + n_rows * s.heads + omp_get_thread_num() * per_thread;  // this thread's share of dq
    float* sp = dq_sum + n_rows * qs;   // [kRows][kKeys] scores, then P
    float* dp = sp + kRows * kKeys;     // [kRows][kKeys] dout . v, then dS
    float* dk_tile = dp + kRows * kKeys;  // [kKeys][hd]
    float* dv_tile = dk_tile + kKeys * hd;
    float* zero = dv_tile + kKeys * hd;   // the inputs of a row past the end
    float* discard = zero + hd;           // and its dq
    std::fill(dq_sum, dq_sum + n_rows * qs, 0.0f);
    std::fill(zero, zero + hd, 0.0f);
    // One task per key tile of a (sequence, kv head): its dk and dv rows are this task's alone. Tasks
    // go to threads round-robin, not first come: each thread's dq share then sums the same tasks in
    // the same order every run, so training is deterministic for a seed and a thread count.
#pragma omp for schedule(static, 1)
    for (int64_t task = 0; task < s.seqs * s.kv_heads * tiles; ++task) {
      const int64_t sg = task / tiles, j0 = task % tiles * kKeys, seq = sg / s.kv_heads, kvh = sg % s.kv_heads;
      const int64_t base = seq * s.t, n = std::min(kKeys, s.t - j0);
      const float* ktp = kt + sg * plane;
      const float* vtp = vt + sg * plane;
      std::fill(dk_tile, dk_tile + n * hd, 0.0f);
      std::fill(dv_tile, dv_tile + n * hd, 0.0f);
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
        for (int64_t i0 = j0; i0 < s.t; i0 += kRows) {
          if (s.first(base + i0) > j0 + n - 1) break;  // first is non-decreasing: no later row sees the tile
          const int64_t rows = std::min(kRows, s.t - i0);
          const float *qr[kRows], *dor[kRows];
          float* dqr[kRows];
          for (int64_t r = 0; r < kRows; ++r) {
            const int64_t at = (base + i0 + r) * qs + h * hd;
            qr[r] = r < rows ? q + at : zero;
            dor[r] = r < rows ? dout + at : zero;
            dqr[r] = r < rows ? dq_sum + at : discard;
          }
          tile_dots(qr, ktp + j0, s.t, hd, n, sp);
          tile_dots(dor, vtp + j0, s.t, hd, n, dp);
          for (int64_t r = 0; r < kRows; ++r) {
            const int64_t row = base + i0 + r;
            const Visible vis = visible(s, r < rows, row, i0 + r, j0, n);
            const int64_t at = r < rows ? row * s.heads + h : 0;
            grad_row(sp + r * kKeys, dp + r * kKeys, n, vis.lo, vis.hi, scale, lse[at], delta[at]);
          }
          tile_outer(sp, dor, hd, n, dv_tile);
          tile_outer(dp, qr, hd, n, dk_tile);
          tile_mix(dp, k + (base + j0) * ks + kvh * hd, ks, hd, n, dqr);
        }
      for (int64_t j = 0; j < n; ++j)
        for (int64_t d = 0; d < hd; ++d) {
          dk[(base + j0 + j) * ks + kvh * hd + d] += dk_tile[j * hd + d];
          dv[(base + j0 + j) * ks + kvh * hd + d] += dv_tile[j * hd + d];
        }
    }
  }
  const float* sums = delta + n_rows * s.heads;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n_rows * qs; ++i)
    for (int th = 0; th < team; ++th) dq[i] += sums[th * per_thread + i];
}

void attention_forward_reference(const float* q, const float* k, const float* v, float* out, float* lse,
                                 const AttentionShape& s) {
  const int64_t hd = s.head_dim, qs = s.heads * hd, ks = s.kv_heads * hd, group = s.heads / s.kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  std::vector<double> scores(static_cast<size_t>(s.t)), o(static_cast<size_t>(hd));
  for (int64_t seq = 0; seq < s.seqs; ++seq)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.t; ++i) {
        const int64_t row = seq * s.t + i, kvh = h / group;
        double m = -std::numeric_limits<double>::infinity(), sum = 0;
        for (int64_t j = s.first(row); j <= i; ++j) {
          double d = 0;
          for (int64_t c = 0; c < hd; ++c) d += static_cast<double>(q[row * qs + h * hd + c]) * k[(seq * s.t + j) * ks + kvh * hd + c];
          m = std::max(m, scores[j] = d * scale);
        }
        std::fill(o.begin(), o.end(), 0.0);
        for (int64_t j = s.first(row); j <= i; ++j) {
          const double p = std::exp(scores[j] - m);
          sum += p;
          for (int64_t c = 0; c < hd; ++c) o[c] += p * v[(seq * s.t + j) * ks + kvh * hd + c];
        }
        for (int64_t c = 0; c < hd; ++c) out[row * qs + h * hd + c] = static_cast<float>(o[c] / sum);
        lse[row * s.heads + h] = static_cast<float>(m + std::log(sum));
      }
}

void attention_backward_reference(const float* q, const float* k, const float* v, const float* out, const float* lse,
                                  const float* dout, float* dq, float* dk, float* dv, const AttentionShape& s) {
  const int64_t hd = s.head_dim, qs = s.heads * hd, ks = s.kv_heads * hd, group = s.heads / s.kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  auto dot_hd = [&](const float* a, const float* b) {
    double d = 0;
    for (int64_t c = 0; c < hd; ++c) d += static_cast<double>(a[c]) * b[c];
    return d;
  };
  for (int64_t seq = 0; seq < s.seqs; ++seq)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.t; ++i) {
        const int64_t row = seq * s.t + i, at = row * qs + h * hd, kvh = h / group;
        const double delta = dot_hd(dout + at, out + at);
        for (int64_t j = s.first(row); j <= i; ++j) {
          const int64_t col = (seq * s.t + j) * ks + kvh * hd;
          const double p = std::exp(scale * dot_hd(q + at, k + col) - lse[row * s.heads + h]);
          const double ds = p * (dot_hd(dout + at, v + col) - delta) * scale;
          for (int64_t c = 0; c < hd; ++c) {
            dv[col + c] += static_cast<float>(p * dout[at + c]);
            dq[at + c] += static_cast<float>(ds * k[col + c]);
            dk[col + c] += static_cast<float>(ds * q[at + c]);
          }
        }
      }
}

}  // namespace longqa::train
