// gemm_bf16 on AMX-BF16 (see gemm_bf16.h for the split and its error). Compiled with AMX and AVX-512
// BF16; entered only after the run-time check (cpu_features().amx_bf16, which also asked the kernel
// for the tile state).
//
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through their masked builtins, which
// -Wmaybe-uninitialized reports at every inlined use: a known false positive.
//
// Blocking: threads take blocks of 128 weight rows; for each 512-element slice of K a thread splits
// its rows into a 256 KiB panel of tiles (L2), then runs 16-row tiles against pairs of 16-token tiles:
// per 32 elements of K, tdpbf16ps of the hi and lo weight tiles with the hi and lo activation tiles
// into two float accumulator tiles, which stay in tile registers over the slice. The activations of
// all tokens are split once per call.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/gemm_bf16.h"

namespace longqa::kernels::amx {
namespace {

constexpr int kTileBytes = 1024;          // every tile: 16 rows x 64 bytes
constexpr int kTileHalves = 512;          // the same in bf16 elements
constexpr int64_t kBlockTiles = 8;        // row tiles per thread block (128 rows)
constexpr int64_t kPanelGroups = 16;      // 32-element groups of K per panel (512 elements)

// Palette 1, all eight tiles 16 x 64 bytes: tmm0/1 weight hi/lo (16 rows x 32 bf16), tmm2/3 and
// tmm4/5 activation hi/lo of two token tiles (16 pairs of K x 16 tokens x 2 bf16), tmm6/7 the two
// float accumulators (16 rows x 16 tokens).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};
static_assert(sizeof(TileConfig) == 64);

// 64-byte aligned storage of n elements of T inside a byte vector that grows only when too small.
template <class T>
T* aligned(std::vector<uint8_t>& buf, size_t n) {
  if (buf.size() < n * sizeof(T) + 64) buf.resize(n * sizeof(T) + 64);
  const auto at = (reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63};
  return reinterpret_cast<T*>(at);
}

__m512 bf16_to_f32(__m256i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16)); }

// 32 floats (a = elements 0..15, b = 16..31) as bf16 hi and lo parts, each 32 bf16 in element order.
void split(__m512 a, __m512 b, __m512i& hi, __m512i& lo) {
  hi = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a));
  const __m512 ra = _mm512_sub_ps(a, bf16_to_f32(_mm512_castsi512_si256(hi)));
  const __m512 rb = _mm512_sub_ps(b, bf16_to_f32(_mm512_extracti64x4_epi64(hi, 1)));
  lo = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(rb, ra));
}

// One token's activations into its token tile: for each group of 32, the pair (2k, 2k+1) goes to
// row k of the hi and lo tiles, at the token's column.
void split_activation(const float* x, int64_t groups, uint16_t* tile_column) {
  const __m512i rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(16));
  for (int64_t g = 0; g < groups; ++g, x += 32, tile_column += 2 * kTileHalves) {
    __m512i hi, lo;
    split(_mm512_loadu_ps(x), _mm512_loadu_ps(x + 16), hi, lo);
    _mm512_i32scatter_epi32(tile_column, rows, hi, 4);
    _mm512_i32scatter_epi32(tile_column + kTileHalves, rows, lo, 4);
  }
}

// Weight rows [r0, r0 + 16 * tiles) x groups [g0, g0 + n_groups) into the panel: [tile][group][hi, lo]
// tiles of 16 rows x 32 bf16. Rows past the matrix are zeros (their results are dropped).
void split_weights(const MatrixView& w, int64_t r0, int64_t tiles, int64_t g0, int64_t n_groups, uint16_t* panel) {
  for (int64_t t = 0; t < tiles; ++t)
    for (int m = 0; m < 16; ++m) {
      const int64_t r = r0 + 16 * t + m;
      uint16_t* out = panel + (t * n_groups * 2) * kTileHalves + m * 32;
      for (int64_t g = 0; g < n_groups; ++g, out += 2 * kTileHalves) {
        if (r >= w.rows) {
          std::memset(out, 0, 64), std::memset(out + kTileHalves, 0, 64);
          continue;
        }
        const auto* src = static_cast<const uint16_t*>(w.row(r)) + (g0 + g) * 32;
        if (w.type == WType::BF16) {
          _mm512_store_si512(out, _mm512_loadu_si512(src));
          continue;
        }
        __m512i hi, lo;
        split(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src))),
              _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 16))), hi, lo);
        _mm512_store_si512(out, hi);
        _mm512_store_si512(out + kTileHalves, lo);
      }
    }
}

// acc0/acc1 (tmm6/7, 16 rows x 16 tokens each) += the panel tile's rows times two token tiles over
// n_groups groups. BF16 weights have no lo part.
void tile_pair(const uint16_t* weights, const uint16_t* x0, const uint16_t* x1, int64_t n_groups, bool weight_lo) {
  for (int64_t g = 0; g < n_groups; ++g, weights += 2 * kTileHalves, x0 += 2 * kTileHalves, x1 += 2 * kTileHalves) {
    _tile_loadd(0, weights, 64);
    _tile_loadd(2, x0, 64);
    _tile_loadd(3, x0 + kTileHalves, 64);
    _tile_loadd(4, x1, 64);
    _tile_loadd(5, x1 + kTileHalves, 64);
    _tile_dpbf16ps(6, 0, 2);
    _tile_dpbf16ps(6, 0, 3);
    _tile_dpbf16ps(7, 0, 4);
    _tile_dpbf16ps(7, 0, 5);
    if (weight_lo) {
      _tile_loadd(1, weights + kTileHalves, 64);
      _tile_dpbf16ps(6, 1, 2);
      _tile_dpbf16ps(7, 1, 4);
    }
  }
}

}  // namespace

void gemm_bf16(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch) {
  const int64_t groups = w.cols / 32;
  const int64_t token_tiles = ((n_tokens + 15) / 16 + 1) / 2 * 2;  // an even count: tiles go in pairs
  // Activations: [token tile][group][hi, lo] tiles; tokens past the end are zeros.
  uint16_t* xs = aligned<uint16_t>(scratch, static_cast<size_t>(token_tiles * groups * 2 * kTileHalves));
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1 && n_tokens >= 16)
  for (int64_t t = 0; t < token_tiles * 16; ++t) {
    uint16_t* column = xs + (t / 16) * groups * 2 * kTileHalves + (t % 16) * 2;
    if (t < n_tokens) {
      split_activation(x + t * w.cols, groups, column);
    } else {
      for (int64_t g = 0; g < 2 * groups; ++g)
        for (int k = 0; k < 16; ++k) std::memset(column + g * kTileHalves + k * 32, 0, 4);
    }
  }
  const bool weight_lo = w.type == WType::F16;
  const int64_t row_blocks = (w.rows + 16 * kBlockTiles - 1) / (16 * kBlockTiles);
#pragma omp parallel num_threads(n_threads) if (n_threads > 1 && row_blocks > 1)
  {
    static const TileConfig config;
    _tile_loadconfig(&config);  // per thread
    std::vector<uint8_t> panel_buf, acc_buf;
    uint16_t* panel = aligned<uint16_t>(panel_buf, static_cast<size_t>(kBlockTiles * kPanelGroups * 2 * kTileHalves));
    float* acc = aligned<float>(acc_buf, static_cast<size_t>(kBlockTiles * token_tiles * 256));
#pragma omp for schedule(dynamic, 1)
    for (int64_t rb = 0; rb < row_blocks; ++rb) {
      const int64_t r0 = rb * 16 * kBlockTiles;
      const int64_t tiles = std::min(kBlockTiles, (w.rows - r0 + 15) / 16);
      for (int64_t g0 = 0; g0 < groups; g0 += kPanelGroups) {
        const int64_t n_groups = std::min(kPanelGroups, groups - g0);
        split_weights(w, r0, tiles, g0, n_groups, panel);
        for (int64_t rt = 0; rt < tiles; ++rt)
          for (int64_t j = 0; j < token_tiles; j += 2) {
            float* c = acc + (rt * token_tiles + j) * 256;
            if (g0 == 0) {
              _tile_zero(6);
              _tile_zero(7);
            } else {
              _tile_loadd(6, c, 64);
              _tile_loadd(7, c + 256, 64);
            }
            const uint16_t* x0 = xs + (j * groups + g0) * 2 * kTileHalves;
            tile_pair(panel + rt * n_groups * 2 * kTileHalves, x0, x0 + groups * 2 * kTileHalves, n_groups, weight_lo);
            _tile_stored(6, c, 64);
            _tile_stored(7, c + 256, 64);
          }
      }
      for (int64_t rt = 0; rt < tiles; ++rt) {
        const int64_t rows = std::min<int64_t>(16, w.rows - r0 - 16 * rt);
        for (int64_t t = 0; t < n_tokens; ++t) {
          const float* c = acc + (rt * token_tiles + t / 16) * 256 + t % 16;
          float* yt = y + t * w.rows + r0 + 16 * rt;
          for (int64_t m = 0; m < rows; ++m) yt[m] = c[m * 16];
        }
      }
    }
    _tile_release();
  }
}

}  // namespace longqa::kernels::amx
