// The int8 micro-kernel of gemm_q (4 weight rows x up to 4 tokens, one 32-element block at a time)
// and its activation packing, vectorised.
// Compiled with AVX-512 VL + VNNI (256-bit vpdpbusd); entered only after the run-time CPU check.
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through their masked builtins, which
// -Wmaybe-uninitialized reports at every inlined use: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/cpu/gemm_q.h"
#include "kernels/cpu/simd_avx2.h"

namespace longqa::kernels::vnni {
namespace {

using simd::hsum;

template <int T>
void tile(const uint8_t* levels, const float* scales, int64_t blocks, const int8_t* const* xq, const float* const* dx,
          float* out) {
  const size_t row = static_cast<size_t>(blocks) * 32;
  __m256 acc[4][T];
  for (auto& r : acc)
    for (auto& a : r) a = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    __m256i w[4];
    __m256 s[4];
    for (int r = 0; r < 4; ++r) {
      w[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(levels + r * row + static_cast<size_t>(b) * 32));
      // Lanes 0-3 hold the first 16 elements' sums, lanes 4-7 the second's: one scale each.
      const float* sc = scales + r * 2 * blocks + 2 * b;
      s[r] = _mm256_set_m128(_mm_set1_ps(sc[1]), _mm_set1_ps(sc[0]));
    }
    for (int t = 0; t < T; ++t) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[t] + b * 32));
      const __m256 d = _mm256_set1_ps(dx[t][b]);
      for (int r = 0; r < 4; ++r) {
        const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w[r], x);
        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(s[r], d), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < 4; ++r)
    for (int t = 0; t < T; ++t) out[r * 4 + t] = hsum(acc[r][t]);
}

}  // namespace

void pack_activation(const float* x, int64_t blocks, int8_t* q, float* d, float* half_sums) {
  for (int64_t i = 0; i < blocks; ++i) {
    const __m512 lo = _mm512_loadu_ps(x + 32 * i), hi = _mm512_loadu_ps(x + 32 * i + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
    d[i] = amax / 127;
    const float id = amax > 0 ? 127 / amax : 0;
    // cvtps rounds to nearest even, as nearbyint does in the default rounding mode.
    const __m512i q_lo = _mm512_cvtps_epi32(_mm512_mul_ps(lo, _mm512_set1_ps(id)));
    const __m512i q_hi = _mm512_cvtps_epi32(_mm512_mul_ps(hi, _mm512_set1_ps(id)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * i), _mm512_cvtsepi32_epi8(q_lo));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * i + 16), _mm512_cvtsepi32_epi8(q_hi));
    half_sums[2 * i] = d[i] * static_cast<float>(_mm512_reduce_add_epi32(q_lo));
    half_sums[2 * i + 1] = d[i] * static_cast<float>(_mm512_reduce_add_epi32(q_hi));
  }
}

void tile_4xn(const uint8_t* levels, const float* scales, int64_t blocks, const int8_t* const* xq, const float* const* dx,
              int n_tokens, float* out) {
  switch (n_tokens) {
    case 1: return tile<1>(levels, scales, blocks, xq, dx, out);
    case 2: return tile<2>(levels, scales, blocks, xq, dx, out);
    case 3: return tile<3>(levels, scales, blocks, xq, dx, out);
    default: return tile<4>(levels, scales, blocks, xq, dx, out);
  }
}

}  // namespace longqa::kernels::vnni
