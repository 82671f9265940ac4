// The AVX-512 VNNI micro-kernel of gemm_q and its activation packing. A 16 x 16 tile runs as two
// halves of 8 weight rows: per 4 elements of K, each row's 4 levels are broadcast and multiplied by
// the 16 tokens' 4 activations (512-bit vpdpbusd: unsigned levels x signed activations), so the int32
// sums of a group of K build up in 8 registers with no conversion inside the group; each group is
// then rescaled into 8 float accumulators (scale x dx, minus the offset x the activation sums).
// Compiled with AVX-512 F + VNNI; entered only after the run-time CPU check.
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through their masked builtins, which
// -Wmaybe-uninitialized reports at every inlined use: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/gemm_q.h"

namespace longqa::kernels::vnni {
namespace {

template <int kGroup>
void tile(const TileOperands& o, float* out) {
  constexpr int per_scale = kGroup / 16, per_block = 32 / kGroup;  // scales are per 16 elements, dx per 32
  const auto scale_stride = static_cast<size_t>(o.groups * per_scale);  // a row's scales
  for (int half = 0; half < 16; half += 8) {
    __m512 acc[8];
    for (auto& a : acc) a = _mm512_setzero_ps();
    for (int64_t g = 0; g < o.groups; ++g) {
      const uint8_t* levels = o.levels + (g * 16 + half) * kGroup;
      const int8_t* x = o.x_tiles + g * kGroup * 16;
      __m512i sums[8];
      for (auto& s : sums) s = _mm512_setzero_si512();
      for (int c = 0; c < kGroup / 4; ++c) {
        const __m512i xc = _mm512_loadu_si512(x + c * 64);
        for (int m = 0; m < 8; ++m) {
          int32_t four;
          std::memcpy(&four, levels + m * kGroup + 4 * c, 4);
          sums[m] = _mm512_dpbusd_epi32(sums[m], _mm512_set1_epi32(four), xc);
        }
      }
      const __m512 d = _mm512_loadu_ps(o.dx + (g / per_block) * 16);
      const __m512 x_sums = _mm512_loadu_ps(o.x_sums + g * 16);
      for (int m = 0; m < 8; ++m) {
        const size_t at = static_cast<size_t>(half + m) * scale_stride + static_cast<size_t>(g * per_scale);
        const __m512 s = _mm512_mul_ps(_mm512_set1_ps(o.scales[at]), d);
        acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[m]), s, acc[m]);
        acc[m] = _mm512_fnmadd_ps(_mm512_set1_ps(o.offsets[at]), x_sums, acc[m]);
      }
    }
    for (int m = 0; m < 8; ++m) _mm512_storeu_ps(out + (half + m) * 16, acc[m]);
  }
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

void tile_16x16(const TileOperands& o, float* out) { o.group == 32 ? tile<32>(o, out) : tile<16>(o, out); }

}  // namespace longqa::kernels::vnni
