// The int8 micro-kernel of gemm_q: 4 weight rows x up to 4 tokens, one 32-element block at a time.
// Compiled with AVX-512 VL + VNNI (256-bit vpdpbusd); entered only after the run-time CPU check.
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
