// gemm_f32 on AVX-512F (see gemm_f32.h for the blocking). Compiled with AVX-512F; entered only after
// the run-time check in gemm_f32.cpp.
//
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through their masked builtins, which
// -Wmaybe-uninitialized reports at every inlined use: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include <omp.h>

#include "kernels/cpu/dot.h"
#include "kernels/cpu/gemm_f32.h"

namespace longqa::kernels::avx512 {
namespace {

constexpr int64_t kPanelRows = 64;  // four vectors of sums per token
constexpr int64_t kSlice = 256;     // elements of K per packed panel: 64 KiB of floats
constexpr int kTokens = 6;          // tokens per register tile: 6 x 4 = 24 accumulators

// The 16 elements at `at` (of a row of `type`) as floats; past `n` of them, zeros.
__m512 widen16(WType type, const uint8_t* at, int64_t n) {
  if (n < 16) {
    alignas(64) float part[16] = {};
    to_f32(type, at, part, n);
    return _mm512_load_ps(part);
  }
  if (type == WType::F32) return _mm512_loadu_ps(reinterpret_cast<const float*>(at));
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at));
  if (type == WType::F16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// In place: r[i][j] becomes r[j][i]. Pairs of 32-bit elements, then of 64, then 128-bit lanes twice.
void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  // u[4q + c] holds, in each 128-bit lane L, element 4L + c of rows 4q .. 4q + 3.
  __m512 u[16];
  for (int q = 0; q < 16; q += 4) {
    u[q] = _mm512_shuffle_ps(t[q], t[q + 2], 0x44), u[q + 1] = _mm512_shuffle_ps(t[q], t[q + 2], 0xEE);
    u[q + 2] = _mm512_shuffle_ps(t[q + 1], t[q + 3], 0x44), u[q + 3] = _mm512_shuffle_ps(t[q + 1], t[q + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 a = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), b = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
    const __m512 e = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88), f = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    r[c] = _mm512_shuffle_f32x4(a, e, 0x88), r[8 + c] = _mm512_shuffle_f32x4(a, e, 0xDD);
    r[4 + c] = _mm512_shuffle_f32x4(b, f, 0x88), r[12 + c] = _mm512_shuffle_f32x4(b, f, 0xDD);
  }
}

// Rows [r0, r0 + 64) x K [k0, k0 + n) as panel[k][row], 16 x 16 blocks transposed in registers; rows
// past the matrix are zeros.
void pack(const MatrixView& w, int64_t r0, int64_t k0, int64_t n, float* panel) {
  const int64_t rows = std::min(kPanelRows, w.rows - r0);
  const size_t stride = w.row_stride(), element = row_bytes(w.type, 1);
  const auto* first = static_cast<const uint8_t*>(w.row(r0)) + static_cast<size_t>(k0) * element;
  for (int64_t m0 = 0; m0 < kPanelRows; m0 += 16)
    for (int64_t k = 0; k < n; k += 16) {
      const int64_t width = std::min<int64_t>(16, n - k);
      __m512 block[16];
      for (int64_t i = 0; i < 16; ++i)
        block[i] = m0 + i < rows ? widen16(w.type, first + static_cast<size_t>(m0 + i) * stride + static_cast<size_t>(k) * element, width)
                                 : _mm512_setzero_ps();
      transpose16(block);
      for (int64_t c = 0; c < width; ++c) _mm512_storeu_ps(panel + (k + c) * kPanelRows + m0, block[c]);
    }
}

// Asks for rows [r0, r0 + 64) x K [k0, k0 + n) to be brought into L2 while the tiles run on the
// panel before them: pack's 64 row streams would otherwise wait on memory for every line.
void prefetch(const MatrixView& w, int64_t r0, int64_t k0, int64_t n) {
  const size_t element = row_bytes(w.type, 1);
  for (int64_t r = r0; r < std::min(r0 + kPanelRows, w.rows); ++r) {
    const char* row = static_cast<const char*>(w.row(r));
    for (size_t b = static_cast<size_t>(k0) * element; b < static_cast<size_t>(k0 + n) * element; b += 64)
      _mm_prefetch(row + b, _MM_HINT_T1);
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
  // Per thread: the K-major panel.
  constexpr size_t kThreadFloats = kPanelRows * kSlice;
  const size_t bytes = static_cast<size_t>(std::max(n_threads, 1)) * kThreadFloats * sizeof(float);
  if (scratch.size() < bytes) scratch.resize(bytes);
#pragma omp parallel num_threads(n_threads) if (n_threads > 1 && panels > 1)
  {
    float* panel = reinterpret_cast<float*>(scratch.data()) + static_cast<size_t>(omp_get_thread_num()) * kThreadFloats;
#pragma omp for schedule(static)  // contiguous panels: a thread's next panel is p + 1
    for (int64_t p = 0; p < panels; ++p) {
      const int64_t r0 = p * kPanelRows, rows = std::min(kPanelRows, w.rows - r0);
      for (int64_t k0 = 0; k0 < w.cols; k0 += kSlice) {
        const int64_t n = std::min(kSlice, w.cols - k0);
        pack(w, r0, k0, n, panel);
        if (k0 + n < w.cols) prefetch(w, r0, k0 + n, std::min(kSlice, w.cols - k0 - n));
        else if (p + 1 < panels) prefetch(w, r0 + kPanelRows, 0, std::min(kSlice, w.cols));
        for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokens) {
          const int m = static_cast<int>(std::min<int64_t>(kTokens, n_tokens - t0));
          kTiles[m](panel, x + t0 * w.cols + k0, w.cols, n, y + t0 * w.rows + r0, w.rows, rows, k0 == 0);
        }
      }
    }
  }
}

}  // namespace longqa::kernels::avx512
