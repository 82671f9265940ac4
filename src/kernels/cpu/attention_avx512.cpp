// One query against one tile of decoded keys and values, with AVX-512F: the tile's 64 scores in four
// registers (keys laid out transposed, so each element of the query is broadcast once against 64
// keys), exponentials evaluated in vectors, the output accumulated in registers over the tile's
// values. Compiled with AVX-512F; entered only after the run-time CPU check.
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through their masked builtins, which
// -W(maybe-)uninitialized reports at every inlined use: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/attention.h"

namespace longqa::kernels::avx512 {
namespace {

constexpr int64_t kTile = AttentionScratch::kKeyTile;
static_assert(kTile == 64, "four registers of scores");

// e^x for x <= 0 to about 1 ulp: x = n ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor polynomial
// of degree 7 (truncation below 2^-27 there), scaled by 2^n. Below -87.3 the result is 0 or subnormal.
__m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);  // ln 2 in two parts: n * hi is exact
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  return _mm512_scalef_ps(p, n);
}

template <int kChunks>  // head_dim / 16
void key_tile(const float* q, const float* keys_t, const float* values, int64_t lo, int64_t hi, float scale, float& running_max,
              float& running_sum, float* out) {
  constexpr int64_t head_dim = 16 * kChunks;
  const int vectors = static_cast<int>((hi + 15) / 16);
  __m512 s[4];
  for (auto& v : s) v = _mm512_setzero_ps();
  for (int64_t d = 0; d < head_dim; ++d) {
    const __m512 qd = _mm512_set1_ps(q[d]);
    for (int v = 0; v < vectors; ++v) s[v] = _mm512_fmadd_ps(qd, _mm512_loadu_ps(keys_t + d * kTile + 16 * v), s[v]);
  }
  // Keys outside [lo, hi) are masked out of the maximum and weigh 0.
  __mmask16 valid[4];
  __m512 tile_max = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int v = 0; v < 4; ++v) {
    const int64_t first = std::max<int64_t>(lo - 16 * v, 0), last = std::min<int64_t>(hi - 16 * v, 16);
    valid[v] = first < last ? static_cast<__mmask16>(((1u << last) - 1) & ~((1u << first) - 1)) : 0;
    s[v] = _mm512_mul_ps(s[v], _mm512_set1_ps(scale));
    tile_max = _mm512_mask_max_ps(tile_max, valid[v], tile_max, s[v]);
  }
  const float new_max = std::max(running_max, _mm512_reduce_max_ps(tile_max));
  const float correction = std::exp(running_max - new_max);
  alignas(64) float p[kTile];
  __m512 sum = _mm512_setzero_ps();
  for (int v = 0; v < 4; ++v) {
    const __m512 e = _mm512_maskz_mov_ps(valid[v], exp_nonpositive(_mm512_sub_ps(s[v], _mm512_set1_ps(new_max))));
    _mm512_store_ps(p + 16 * v, e);
    sum = _mm512_add_ps(sum, e);
  }
  running_sum = running_sum * correction + _mm512_reduce_add_ps(sum);
  running_max = new_max;
  __m512 acc[kChunks];
  for (int c = 0; c < kChunks; ++c) acc[c] = _mm512_mul_ps(_mm512_loadu_ps(out + 16 * c), _mm512_set1_ps(correction));
  for (int64_t j = lo; j < hi; ++j) {
    const __m512 pj = _mm512_set1_ps(p[j]);
    for (int c = 0; c < kChunks; ++c) acc[c] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(values + j * head_dim + 16 * c), acc[c]);
  }
  for (int c = 0; c < kChunks; ++c) _mm512_storeu_ps(out + 16 * c, acc[c]);
}

}  // namespace

void attend_key_tile(const float* q, const float* keys_t, const float* values, int64_t lo, int64_t hi, int64_t head_dim,
                     float scale, float& running_max, float& running_sum, float* out) {
  switch (head_dim) {
    case 64: return key_tile<4>(q, keys_t, values, lo, hi, scale, running_max, running_sum, out);
    case 128: return key_tile<8>(q, keys_t, values, lo, hi, scale, running_max, running_sum, out);
    case 32: return key_tile<2>(q, keys_t, values, lo, hi, scale, running_max, running_sum, out);
    case 256: return key_tile<16>(q, keys_t, values, lo, hi, scale, running_max, running_sum, out);
    default: return key_tile<1>(q, keys_t, values, lo, hi, scale, running_max, running_sum, out);  // 16 (attend checks)
  }
}

}  // namespace longqa::kernels::avx512
