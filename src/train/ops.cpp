#include "train/ops.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "train/vector_clones.h"

namespace longqa::train {

namespace {

constexpr int64_t kTileRows = 6;   // rows of c per tile
constexpr int64_t kTileCols = 64;  // columns of c per tile: 6 x 64 sums (24 registers) held over the depth

// c[r][j] += sum_k a[r][k] b[k][j] for r < rows (at most kTileRows), k < depth, j < cols, where a's
// element (r, k) is at a[r * a_row + k * a_col] (so a may be a transposed view), b is row-major with
// ldb, c with ldc.
LONGQA_VECTOR_CLONES void gemm_tile(const float* a, int64_t a_row, int64_t a_col, const float* b, int64_t ldb, float* c,
                                    int64_t ldc, int64_t rows, int64_t depth, int64_t cols) {
  const float* ar[kTileRows];
  for (int64_t r = 0; r < kTileRows; ++r) ar[r] = a + std::min(r, rows - 1) * a_row;  // missing rows repeat the last
  constexpr int64_t kVecs = kTileCols / 16;
  int64_t j = 0;
  for (; j + kTileCols <= cols; j += kTileCols) {
    v16 acc[kTileRows][kVecs] = {};
    for (int64_t k = 0; k < depth; ++k) {
      v16 bv[kVecs];
#pragma GCC unroll 4
      for (int64_t v = 0; v < kVecs; ++v) bv[v] = load16(b + k * ldb + j + 16 * v);
#pragma GCC unroll 16
      for (int64_t r = 0; r < kTileRows; ++r) {
        const float av = ar[r][k * a_col];
#pragma GCC unroll 4
        for (int64_t v = 0; v < kVecs; ++v) acc[r][v] += av * bv[v];
      }
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t v = 0; v < kVecs; ++v) add16(c + r * ldc + j + 16 * v, acc[r][v]);
  }
  if (j == cols) return;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < depth; ++k) {
      const float av = ar[r][k * a_col];
      const float* bk = b + k * ldb;
      float* cr = c + r * ldc;
#pragma omp simd
      for (int64_t jj = j; jj < cols; ++jj) cr[jj] += av * bk[jj];
    }
}

// c [m x n] += a [m x depth] b [depth x n], in tiles split across threads; depth and columns are taken
// in panels of b that every tile reads from L2 (the output matrix's 4,096 columns do not fit whole).
void gemm(const float* a, int64_t a_row, int64_t a_col, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m,
          int64_t depth, int64_t n, int threads) {
  constexpr int64_t kSlice = 256, kPanel = 512;  // a 256 x 512 panel of b (512 KiB) stays in L2
#pragma omp parallel num_threads(threads)
  for (int64_t k0 = 0; k0 < depth; k0 += kSlice)
    for (int64_t j0 = 0; j0 < n; j0 += kPanel) {
      const int64_t kd = std::min(kSlice, depth - k0), nj = std::min(kPanel, n - j0);
#pragma omp for schedule(static)
      for (int64_t r0 = 0; r0 < m; r0 += kTileRows)
        gemm_tile(a + r0 * a_row + k0 * a_col, a_row, a_col, b + k0 * ldb + j0, ldb, c + r0 * ldc + j0, ldc,
                  std::min(kTileRows, m - r0), kd, nj);
    }
}

}  // namespace

void linear_forward(const float* x, const float* w, float* y, int64_t n, int64_t in, int64_t out, int threads,
                    std::vector<float>& wt) {
  if (wt.size() < static_cast<size_t>(in * out)) wt.resize(static_cast<size_t>(in * out));
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < in; ++i)
    for (int64_t o = 0; o < out; ++o) wt[static_cast<size_t>(i * out + o)] = w[o * in + i];
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n * out; ++i) y[i] = 0.0f;
  gemm(x, in, 1, wt.data(), out, y, out, n, in, out, threads);  // y = x wᵀ
}

void linear_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, int64_t n, int64_t in, int64_t out,
                     int threads) {
  if (dx) gemm(dy, out, 1, w, in, dx, in, n, out, in, threads);  // dx += dy w
  gemm(dy, 1, out, x, in, dw, in, out, n, in, threads);          // dw += dyᵀ x
}

void rmsnorm_forward(const float* x, const float* g, float* y, float* rstd, int64_t n, int64_t d, float eps,
                     int threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t t = 0; t < n; ++t) {
    const float* xr = x + t * d;
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const auto r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps));
    rstd[t] = r;
    for (int64_t i = 0; i < d; ++i) y[t * d + i] = xr[i] * r * g[i];
  }
}

void rmsnorm_backward(const float* x, const float* g, const float* rstd, const float* dy, float* dx, float* dg,
                      int64_t n, int64_t d, int threads) {
  // y_i = x_i r g_i with r = (mean x² + eps)^-1/2:  dx_i = r g_i dy_i - x_i r³ / d * sum_j dy_j g_j x_j
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static) nowait
    for (int64_t t = 0; t < n; ++t) {
      const float* xr = x + t * d;
      const float* dyr = dy + t * d;
      const float r = rstd[t];
      double s = 0;
      for (int64_t i = 0; i < d; ++i) s += static_cast<double>(dyr[i]) * g[i] * xr[i];
      const auto c = static_cast<float>(s * r * r * r / static_cast<double>(d));
      for (int64_t i = 0; i < d; ++i) dx[t * d + i] += r * g[i] * dyr[i] - xr[i] * c;
    }
    // Each thread owns a range of columns and walks the rows in order over it: every dg[i] sums its
    // rows in order, so the bits are one thread's, and each row is read as a contiguous stretch.
    const int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
    const int64_t i0 = d * me / team, i1 = d * (me + 1) / team;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = i0; i < i1; ++i) dg[i] += dy[t * d + i] * x[t * d + i] * rstd[t];
  }
}

namespace {

void rope(float* x, int64_t seqs, int64_t t, int64_t heads, int64_t head_dim, const float* inv_freq, float sign,
          int threads) {
  const int64_t half = head_dim / 2;
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
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

void rope_forward(float* x, int64_t seqs, int64_t t, int64_t heads, int64_t head_dim, const float* inv_freq,
                  int threads) {
  rope(x, seqs, t, heads, head_dim, inv_freq, 1.0f, threads);
}
void rope_backward(float* dx, int64_t seqs, int64_t t, int64_t heads, int64_t head_dim, const float* inv_freq,
                   int threads) {
  rope(dx, seqs, t, heads, head_dim, inv_freq, -1.0f, threads);
}

void swiglu_forward(const float* gate, const float* up, float* h, int64_t n, int threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) h[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void swiglu_backward(const float* gate, const float* up, const float* dh, float* dgate, float* dup, int64_t n,
                     int threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
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
