// AVX2 integer dot products of block-quantized weights with quantized activations. Compiled with
// AVX2/FMA/F16C enabled and entered only after the run-time CPU check (see dot.cpp). Each mirrors
// its scalar reference in quant_ref.cpp: same integer sums, same scale order.
#include <immintrin.h>

#include <cstddef>
#include <cstring>

#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd_avx2.h"

namespace longqa::kernels::avx2 {
namespace {

using simd::hsum;
using simd::hsum_i32;
using simd::lane;
using simd::scales8;

// Every cache line of one block, simd::kPrefetchBytes ahead.
template <typename Block>
inline void prefetch_block(const Block* b) {
  simd::prefetch(b, sizeof(Block));
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Sums of products of signed bytes in pairs of 16-bit lanes -> 8 x int32 (a, b in [-127, 127]).
inline __m256i dot_i8(__m256i a, __m256i b) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// Unsigned levels (<= 63) times signed bytes, pairs summed to 16 bits.
inline __m256i dot_u8_i8_pairs(__m256i u, __m256i s) { return _mm256_maddubs_epi16(u, s); }

// F16C's hardware conversion: the scalar bit-twiddling version costs more than a block's dot.
inline float f16(uint16_t h) { return _cvtsh_ss(h); }

}  // namespace

float dot_q8_0(const void* w, const void* x, int64_t n) {
  const auto* a = static_cast<const BlockQ8_0*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  // Two accumulators: consecutive blocks do not wait on each other's FMA.
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int64_t nb = n / kQK;
  int64_t i = 0;
  for (; i + 1 < nb; i += 2) {
    simd::prefetch(a + i, 2 * sizeof(BlockQ8_0));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * f16(b[i].d)),
                           _mm256_cvtepi32_ps(dot_i8(load32(a[i].qs), load32(b[i].qs))), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i + 1].d) * f16(b[i + 1].d)),
                           _mm256_cvtepi32_ps(dot_i8(load32(a[i + 1].qs), load32(b[i + 1].qs))), acc1);
  }
  for (; i < nb; ++i)
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * f16(b[i].d)), _mm256_cvtepi32_ps(dot_i8(load32(a[i].qs), load32(b[i].qs))), acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

float dot_q4_0(const void* w, const void* x, int64_t n) {
  const auto* a = static_cast<const BlockQ4_0*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  const __m256i low4 = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
  // Low nibbles are elements 0..15, high nibbles 16..31; levels are stored with +8.
  auto levels = [&](int64_t i) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].qs));
    return _mm256_sub_epi8(_mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), low4), eight);
  };
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int64_t nb = n / kQK;
  int64_t i = 0;
  // Eight blocks at a time, their scale products in one vector (the same products, summed into the
  // same accumulators in the same order as the loop below).
  for (; i + 8 <= nb; i += 8) {
    simd::prefetch(a + i, 8 * sizeof(BlockQ4_0));
    const __m256 scale = _mm256_mul_ps(scales8(a + i), scales8(b + i));
    for (int k = 0; k < 8; k += 2) {
      acc0 = _mm256_fmadd_ps(lane(scale, k), _mm256_cvtepi32_ps(dot_i8(levels(i + k), load32(b[i + k].qs))), acc0);
      acc1 = _mm256_fmadd_ps(lane(scale, k + 1), _mm256_cvtepi32_ps(dot_i8(levels(i + k + 1), load32(b[i + k + 1].qs))), acc1);
    }
  }
  for (; i + 1 < nb; i += 2) {
    simd::prefetch(a + i, 2 * sizeof(BlockQ4_0));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * f16(b[i].d)), _mm256_cvtepi32_ps(dot_i8(levels(i), load32(b[i].qs))), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i + 1].d) * f16(b[i + 1].d)),
                           _mm256_cvtepi32_ps(dot_i8(levels(i + 1), load32(b[i + 1].qs))), acc1);
  }
  for (; i < nb; ++i)
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * f16(b[i].d)), _mm256_cvtepi32_ps(dot_i8(levels(i), load32(b[i].qs))), acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

void dot_q4_0x8(const void* w, const void* x, int64_t n, float* y) {
  const auto* a = static_cast<const BlockQ4_0x8*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  const int64_t nb = n / kQK;
  const auto* trailer = reinterpret_cast<const float*>(b + nb);
  // Lane r is row r, as in the VNNI kernel (quant_vnni.cpp). The levels stay unsigned (0..15), as
  // maddubs takes its first operand, and the offset of 8 comes from the trailer's block sums. The
  // eight 16-bit partial sums of a block fit: at most 8 x 2 x 15 x 127 = 30480.
  const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps(), offset = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    prefetch_block(a + i);
    const int8_t* xq = b[i].qs;
    __m256i sum = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i packed = load32(a[i].qs[j]);
      sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(_mm256_and_si256(packed, low4), simd::broadcast4(xq + 4 * j)));
      sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(packed, 4), low4),
                                                       simd::broadcast4(xq + 16 + 4 * j)));
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].d)));
    acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(simd::trailer_at(trailer, i))),
                          _mm256_cvtepi32_ps(_mm256_madd_epi16(sum, ones)), acc);
    offset = _mm256_fmadd_ps(dw, _mm256_set1_ps(simd::trailer_at(trailer, nb + i)), offset);
  }
  _mm256_storeu_ps(y, _mm256_fnmadd_ps(_mm256_set1_ps(8.0f), offset, acc));
}

namespace {
// Shared by Q4_K and Q5_K: level vectors for sub-blocks 2c and 2c+1, weighted by their 6-bit scales.
template <typename Levels>
float dot_k_affine(const uint8_t* scales_field, float d, float dmin, const BlockQ8_K& xb, Levels levels) {
  uint8_t sc[8], mn[8];
  for (int j = 0; j < 8; ++j) k_scale_min(j, scales_field, sc[j], mn[j]);
  __m256i acc = _mm256_setzero_si256();
  for (int c = 0; c < 4; ++c) {
    __m256i q_lo, q_hi;
    levels(c, q_lo, q_hi);
    const __m256i p_lo = dot_u8_i8_pairs(q_lo, load32(xb.qs + 64 * c));
    const __m256i p_hi = dot_u8_i8_pairs(q_hi, load32(xb.qs + 64 * c + 32));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p_lo, _mm256_set1_epi16(sc[2 * c])));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p_hi, _mm256_set1_epi16(sc[2 * c + 1])));
  }
  int sum_min = 0;
  for (int j = 0; j < 8; ++j) sum_min += mn[j] * (xb.bsums[2 * j] + xb.bsums[2 * j + 1]);
  return xb.d * (d * static_cast<float>(hsum_i32(acc)) - dmin * static_cast<float>(sum_min));
}
}  // namespace

float dot_q4_k(const void* w, const void* x, int64_t n) {
  const auto* a = static_cast<const BlockQ4_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  float s = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    prefetch_block(a + i);
    s += dot_k_affine(a[i].scales, f16(a[i].d), f16(a[i].dmin), b[i], [&](int c, __m256i& lo, __m256i& hi) {
      const __m256i packed = load32(a[i].qs + 32 * c);
      lo = _mm256_and_si256(packed, low4);
      hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
    });
  }
  return s;
}

float dot_q5_k(const void* w, const void* x, int64_t n) {
  const auto* a = static_cast<const BlockQ5_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  const __m256i low4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  float s = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    prefetch_block(a + i);
    const __m256i qh = load32(a[i].qh);
    s += dot_k_affine(a[i].scales, f16(a[i].d), f16(a[i].dmin), b[i], [&](int c, __m256i& lo, __m256i& hi) {
      const __m256i packed = load32(a[i].qs + 32 * c);
      // Sub-block s takes bit s of each qh byte as its fifth bit.
      const __m256i h_lo = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4);
      const __m256i h_hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4);
      lo = _mm256_or_si256(_mm256_and_si256(packed, low4), h_lo);
      hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(packed, 4), low4), h_hi);
    });
  }
  return s;
}

float dot_q6_k(const void* w, const void* x, int64_t n) {
  const auto* a = static_cast<const BlockQ6_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(3);
  float s = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    prefetch_block(a + i);
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = load32(a[i].ql + 64 * h), l1 = load32(a[i].ql + 64 * h + 32);
      const __m256i hb = load32(a[i].qh + 32 * h);
      // Unsigned levels 0..63 of elements h*128 + [0,32), [32,64), [64,96), [96,128).
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(hb, low2), 4)),
          _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), low2), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), low2), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), low2), 4)),
      };
      for (int k = 0; k < 4; ++k) {
        const int e = 128 * h + 32 * k;  // first element; groups e/16 and e/16 + 1
        const __m256i pairs = dot_u8_i8_pairs(q[k], load32(b[i].qs + e));
        const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(a[i].scales[e / 16 + 1]), _mm_set1_epi16(a[i].scales[e / 16]));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, scale));
      }
    }
    // The levels carry a +32 offset: subtract 32 * scale * (sum of x quants) per group.
    int offset = 0;
    for (int g = 0; g < 16; ++g) offset += a[i].scales[g] * b[i].bsums[g];
    s += b[i].d * f16(a[i].d) * static_cast<float>(hsum_i32(acc) - 32 * offset);
  }
  return s;
}

}  // namespace longqa::kernels::avx2
