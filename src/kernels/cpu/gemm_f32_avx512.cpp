// gemm_f32 on AVX-512F (see gemm_f32.h for the blocking). Compiled with AVX-512F; entered only after
// the run-time check in gemm_f32.cpp.
//
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through their masked builtins, which
// -Wmaybe-uninitialized reports at every inlined use: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include <omp.h>

#include "kernels/cpu/gemm_f32.h"
#include "util/fp16.h"

namespace longqa::kernels::avx512 {
namespace {

constexpr int64_t kPanelRows = 64;  // four vectors of sums per token
constexpr int64_t kSlice = 256;     // elements of K per packed panel: 64 KiB of floats
constexpr int kTokens = 6;          // tokens per register tile: 6 x 4 = 24 accumulators

// Row r's elements [k0, k0 + n) as floats.
void widen(const MatrixView& w, int64_t r, int64_t k0, int64_t n, float* out) {
  const void* row = w.row(r);
  int64_t k = 0;
  if (w.type == WType::F32) {
    std::memcpy(out, static_cast<const float*>(row) + k0, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  const auto* h = static_cast<const uint16_t*>(row) + k0;
  if (w.type == WType::F16) {
    for (; k + 16 <= n; k += 16) _mm512_storeu_ps(out + k, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + k))));
    for (; k < n; ++k) out[k] = f16_to_f32(h[k]);
  } else {
    for (; k + 16 <= n; k += 16) {
      const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + k)));
      _mm512_storeu_ps(out + k, _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
    }
    for (; k < n; ++k) out[k] = bf16_to_f32(h[k]);
  }
}

// Rows [r0, r0 + 64) x K [k0, k0 + n) as panel[k][row]; rows past the matrix are zeros.
void pack(const MatrixView& w, int64_t r0, int64_t k0, int64_t n, float* rows_buf, float* panel) {
  const int64_t rows = std::min(kPanelRows, w.rows - r0);
  for (int64_t m = 0; m < rows; ++m) widen(w, r0 + m, k0, n, rows_buf + m * kSlice);
  for (int64_t k = 0; k < n; ++k) {
    float* out = panel + k * kPanelRows;
    for (int64_t m = 0; m < rows; ++m) out[m] = rows_buf[m * kSlice + k];
    for (int64_t m = rows; m < kPanelRows; ++m) out[m] = 0;
  }
}

// y rows of M tokens, columns [r0, r0 + rows): the panel's sums over K [k0, k0 + n) added to them
// (written when first), through 4 x M registers.
template <int M>
void tile(const float* panel, const float* x, int64_t x_stride, int64_t n, float* y, int64_t y_stride, int64_t rows, bool first) {
  __m512 acc[M][4];
  __mmask16 mask[4];  // the lanes of each vector of sums that hold one of the panel's `rows` rows
  for (int v = 0; v < 4; ++v) {
    const int64_t lanes = std::clamp<int64_t>(rows - 16 * v, 0, 16);
    mask[v] = static_cast<__mmask16>((1u << lanes) - 1);
  }
  for (int t = 0; t < M; ++t)
    for (int v = 0; v < 4; ++v) acc[t][v] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask[v], y + t * y_stride + 16 * v);
  for (int64_t k = 0; k < n; ++k, panel += kPanelRows) {
    const __m512 w0 = _mm512_loadu_ps(panel), w1 = _mm512_loadu_ps(panel + 16), w2 = _mm512_loadu_ps(panel + 32),
                 w3 = _mm512_loadu_ps(panel + 48);
    for (int t = 0; t < M; ++t) {
      const __m512 xt = _mm512_set1_ps(x[t * x_stride + k]);
      acc[t][0] = _mm512_fmadd_ps(w0, xt, acc[t][0]);
      acc[t][1] = _mm512_fmadd_ps(w1, xt, acc[t][1]);
      acc[t][2] = _mm512_fmadd_ps(w2, xt, acc[t][2]);
      acc[t][3] = _mm512_fmadd_ps(w3, xt, acc[t][3]);
    }
  }
  for (int t = 0; t < M; ++t)
    for (int v = 0; v < 4; ++v) _mm512_mask_storeu_ps(y + t * y_stride + 16 * v, mask[v], acc[t][v]);
}

using TileFn = void (*)(const float*, const float*, int64_t, int64_t, float*, int64_t, int64_t, bool);
constexpr TileFn kTiles[kTokens + 1] = {nullptr, tile<1>, tile<2>, tile<3>, tile<4>, tile<5>, tile<6>};

}  // namespace

void gemm_f32(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch) {
  const int64_t panels = (w.rows + kPanelRows - 1) / kPanelRows;
  // Per thread: the K-major panel, then the widened rows it is made from.
  constexpr size_t kThreadFloats = 2 * kPanelRows * kSlice;
  const size_t bytes = static_cast<size_t>(std::max(n_threads, 1)) * kThreadFloats * sizeof(float);
  if (scratch.size() < bytes) scratch.resize(bytes);
#pragma omp parallel num_threads(n_threads) if (n_threads > 1 && panels > 1)
  {
    float* panel = reinterpret_cast<float*>(scratch.data()) + static_cast<size_t>(omp_get_thread_num()) * kThreadFloats;
    float* rows_buf = panel + kPanelRows * kSlice;
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < panels; ++p) {
      const int64_t r0 = p * kPanelRows, rows = std::min(kPanelRows, w.rows - r0);
      for (int64_t k0 = 0; k0 < w.cols; k0 += kSlice) {
        const int64_t n = std::min(kSlice, w.cols - k0);
        pack(w, r0, k0, n, rows_buf, panel);
        for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokens) {
          const int m = static_cast<int>(std::min<int64_t>(kTokens, n_tokens - t0));
          kTiles[m](panel, x + t0 * w.cols + k0, w.cols, n, y + t0 * w.rows + r0, w.rows, rows, k0 == 0);
        }
      }
    }
  }
}

}  // namespace longqa::kernels::avx512
