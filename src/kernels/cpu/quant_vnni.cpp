// AVX-512 VNNI dot products of Q8_0 and Q4_0 weights with Q8_0 activations (256-bit vectors with
// AVX-512 VL; Q4_0's scales fetched eight at a time by an AVX-512 BW permute), and
// of the K-quants (Q4_K, Q5_K, Q6_K) with Q8_K activations. Q4_0's levels 0..15 are unsigned
// already, and Q8_0's become so by flipping the sign bit (q + 128), so one vpdpbusd multiplies a
// block with the signed activation bytes, where AVX2 needs two sign operations, maddubs and madd
// (and a subtraction for Q4_0). The offset this leaves, 8 or 128 times sum_b d_w d_x
// sum(x_q), comes from the activation row's trailer of scaled block sums (computed once per row, see
// act_row_bytes). That frees the vector multiply ports, which bound these loops (BENCHMARKS.md). The
// K-quants keep maddubs, but apply their sub-block scales with vpdpwssd on 512-bit vectors, the
// scales of a vector's four 128-bit lanes made by one permute. Q4_0 rows interleaved in eights
// (Q4_0x8) take one row per 32-bit lane, so that the scale work is done once for eight rows. Same
// integer sums as the scalar reference; the float sums run in another order. Compiled with AVX-512
// VL/BW/VNNI and entered only after the run-time CPU check (see dot.cpp).
//
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through their masked builtins, which
// -W(maybe-)uninitialized reports at every inlined use: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd_avx2.h"

namespace longqa::kernels::vnni {
namespace {

using simd::broadcast4;
using simd::trailer_at;

// One 512-bit vector of two 256-bit halves: lo in bits 0-255, hi in 256-511.
inline __m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

}  // namespace

float dot_q8_0(const void* w, const void* x, int64_t n) {
  const auto* a = static_cast<const BlockQ8_0*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  const int64_t nb = n / kQK;
  const auto* trailer = reinterpret_cast<const float*>(b + nb);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  // (q + 128) . x_q per block: the weights made unsigned by flipping their sign bit.
  auto dot = [&](int64_t i) {
    const __m256i levels = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs)), flip);
    return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), levels, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs))));
  };
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float offset = 0;
  // Block i into acc, its offset into `offset`.
  auto block = [&](int64_t i, __m256& acc) {
    const float dw = _cvtsh_ss(a[i].d);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dw * trailer_at(trailer, i)), dot(i), acc);
    offset += dw * trailer_at(trailer, nb + i);
  };
  int64_t i = 0;
  for (; i + 1 < nb; i += 2) {
    simd::prefetch(a + i, 2 * sizeof(BlockQ8_0));
    block(i, acc0);
    block(i + 1, acc1);
  }
  if (i < nb) block(i, acc0);
  return simd::hsum(_mm256_add_ps(acc0, acc1)) - 128 * offset;
}

float dot_q4_0(const void* w, const void* x, int64_t n) {
  const auto* a = static_cast<const BlockQ4_0*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  const int64_t nb = n / kQK;
  const auto* trailer = reinterpret_cast<const float*>(b + nb);  // d_x[nb], then d_x sum(x_q)[nb]; may be unaligned
  // One block per 256-bit vpdpbusd, its levels (low nibbles are elements 0..15, high nibbles 16..31)
  // from one broadcast load of its 16 bytes, the upper copy shifted by 4; eight blocks' scales made
  // at once, then one lane permute per block. A Zen 4 runs 512-bit vectors at half rate, and there
  // two blocks per 512-bit vector (joined by inserts) took 0.93 ns a block, this 0.81; storing the
  // eight scales and broadcasting each from memory is slower still (BENCHMARKS.md).
  const __m256i nibble_shift = _mm256_setr_epi64x(0, 0, 4, 4), low4 = _mm256_set1_epi8(0x0F);
  auto dot = [&](int64_t i) {
    const __m256i packed = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].qs)));
    const __m256i levels = _mm256_and_si256(_mm256_srlv_epi64(packed, nibble_shift), low4);
    return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), levels, load256(b[i].qs)));
  };
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  __m256 offset = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= nb; i += 8) {
    simd::prefetch(a + i, 8 * sizeof(BlockQ4_0));
    // The 8 blocks' F16 scales, words 0, 9, ..., 63 of their first 128 bytes: one two-source word
    // permute (a gather, as the AVX2 path uses, took a third of this loop's time on a Zen 5).
    const __m128i halves = _mm512_castsi512_si128(_mm512_permutex2var_epi16(
        _mm512_loadu_si512(a + i), _mm512_castsi256_si512(_mm256_setr_epi16(0, 9, 18, 27, 36, 45, 54, 63, 0, 0, 0, 0, 0, 0, 0, 0)),
        _mm512_loadu_si512(reinterpret_cast<const uint8_t*>(a + i) + 64)));
    const __m256 dw = _mm256_cvtph_ps(halves);
    const __m256 scale = _mm256_mul_ps(dw, _mm256_loadu_ps(trailer + i));
    offset = _mm256_fmadd_ps(dw, _mm256_loadu_ps(trailer + nb + i), offset);
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) acc[k % 4] = _mm256_fmadd_ps(simd::lane(scale, k), dot(i + k), acc[k % 4]);
  }
  float tail = 0, tail_offset = 0;
  for (; i < nb; ++i) {
    const float dw = _cvtsh_ss(a[i].d);
    tail += dw * trailer_at(trailer, i) * simd::hsum(dot(i));
    tail_offset += dw * trailer_at(trailer, nb + i);
  }
  return simd::hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))) + tail -
         8 * (simd::hsum(offset) + tail_offset);
}

void dot_q4_0x8(const void* w, const void* x, int64_t n, float* y) {
  const auto* a = static_cast<const BlockQ4_0x8*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  const int64_t nb = n / kQK;
  const auto* trailer = reinterpret_cast<const float*>(b + nb);
  // Lane r is row r throughout: each 256-bit vector of levels holds four elements of every row, so
  // one broadcast of the activations' four matching bytes serves all eight rows, and the eight
  // rows' scales are one conversion and one FMA per block, where a row at a time pays them per row
  // (dot_q4_0). The high nibbles (elements 16..31) are multiplied where they stand, as 16 times
  // their level: a mask instead of a shift and a mask, the factor taken out once per block (the
  // low sum times 16 plus the high is exact in 32 bits: at most 32 x 240 x 128).
  const __m256i low4 = _mm256_set1_epi8(0x0F), high4 = _mm256_set1_epi8(static_cast<char>(0xF0));
  __m256 offset = _mm256_setzero_ps();
  auto block = [&](int64_t i, __m256& acc) {
    const int8_t* xq = b[i].qs;
    __m256i lo[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()}, hi[2] = {lo[0], lo[0]};
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m256i packed = load256(a[i].qs[j]);
      lo[j & 1] = _mm256_dpbusd_epi32(lo[j & 1], _mm256_and_si256(packed, low4), broadcast4(xq + 4 * j));
      hi[j & 1] = _mm256_dpbusd_epi32(hi[j & 1], _mm256_and_si256(packed, high4), broadcast4(xq + 16 + 4 * j));
    }
    const __m256i sum16 =
        _mm256_add_epi32(_mm256_slli_epi32(_mm256_add_epi32(lo[0], lo[1]), 4), _mm256_add_epi32(hi[0], hi[1]));
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].d)));
    const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(trailer_at(trailer, i) * 0.0625f));
    acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sum16), acc);
    offset = _mm256_fmadd_ps(dw, _mm256_set1_ps(trailer_at(trailer, nb + i)), offset);
  };
  // Two accumulators named apart (an array indexed by i & 1 lived on the stack).
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    simd::prefetch(a + i, 2 * sizeof(BlockQ4_0x8));
    block(i, acc0);
    block(i + 1, acc1);
  }
  if (i < nb) block(i, acc0);
  _mm256_storeu_ps(y, _mm256_fnmadd_ps(_mm256_set1_ps(8.0f), offset, _mm256_add_ps(acc0, acc1)));
}

namespace {

// The 6-bit scales and mins of a Q4_K/Q5_K super-block, unpacked four at a time in 32-bit words;
// dword k of each result holds sub-block k's value twice as int16s, so that one broadcast or permute
// makes a sub-block's scale vector for vpdpwssd, and the mins meet the activation's block sums in
// one madd.
inline void k_scale_pairs(const uint8_t* scales_field, __m256i& scale_pairs, __m256i& min_pairs) {
  uint32_t f[3];
  std::memcpy(f, scales_field, sizeof f);
  const uint32_t scales[2] = {f[0] & 0x3f3f3f3f, (f[2] & 0x0f0f0f0f) | ((f[0] >> 2) & 0x30303030)};
  const uint32_t mins[2] = {f[1] & 0x3f3f3f3f, ((f[2] >> 4) & 0x0f0f0f0f) | ((f[1] >> 2) & 0x30303030)};
  const __m128i s16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales)));
  const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mins)));
  scale_pairs = _mm256_set_m128i(_mm_unpackhi_epi16(s16, s16), _mm_unpacklo_epi16(s16, s16));
  min_pairs = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
}

// Q4_K and Q5_K on 512-bit vectors: 64 bytes of levels hold sub-blocks 4h, 4h + 2 (low nibbles) and
// 4h + 1, 4h + 3 (high), each 256-bit half beside its 32 activations and its scale from one permute
// (Q4_K: 0.75 -> 0.66 ns per 32 elements on a Zen 5 against the 256-bit form, BENCHMARKS.md).
// fifth(i, h, high) gives Q5_K's fifth bits of those sub-blocks at bit 4 (Q4_K: none).
template <typename Block, typename FifthBits>
inline float dot_k_affine(const Block* a, const BlockQ8_K* b, int64_t n, FifthBits fifth) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  // Activations p[0, 32) and p[64, 96), the elements of the sub-blocks in one vector's two halves.
  auto halves = [](const int8_t* p) { return join(load256(p), load256(p + 64)); };
  auto lanes = [](int first, int second) { return join(_mm256_set1_epi32(first), _mm256_set1_epi32(second)); };
  __m512 acc = _mm512_setzero_ps();
  __m256 min_acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    simd::prefetch(a + i, sizeof(Block));
    __m256i pairs, min_pairs;
    k_scale_pairs(a[i].scales, pairs, min_pairs);
    const __m512i scales = _mm512_castsi256_si512(pairs);
    __m512i sums = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i packed = _mm512_loadu_si512(a[i].qs + 64 * h);
      const int8_t* x_q = b[i].qs + 128 * h;
      const __m512i lo = _mm512_or_si512(_mm512_and_si512(packed, low4), fifth(i, h, 0));
      const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(packed, 4), low4), fifth(i, h, 1));
      sums = _mm512_dpwssd_epi32(sums, _mm512_maddubs_epi16(lo, halves(x_q)), _mm512_permutexvar_epi32(lanes(4 * h, 4 * h + 2), scales));
      sums = _mm512_dpwssd_epi32(sums, _mm512_maddubs_epi16(hi, halves(x_q + 32)), _mm512_permutexvar_epi32(lanes(4 * h + 1, 4 * h + 3), scales));
    }
    const __m256i min_sums = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].bsums)), min_pairs);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(b[i].d * _cvtsh_ss(a[i].d)), _mm512_cvtepi32_ps(sums), acc);
    min_acc = _mm256_fmadd_ps(_mm256_set1_ps(b[i].d * _cvtsh_ss(a[i].dmin)), _mm256_cvtepi32_ps(min_sums), min_acc);
  }
  return _mm512_reduce_add_ps(acc) - simd::hsum(min_acc);
}

}  // namespace

float dot_q4_k(const void* w, const void* x, int64_t n) {
  return dot_k_affine(static_cast<const BlockQ4_K*>(w), static_cast<const BlockQ8_K*>(x), n,
                      [](int64_t, int, int) { return _mm512_setzero_si512(); });
}

float dot_q5_k(const void* w, const void* x, int64_t n) {
  const auto* a = static_cast<const BlockQ5_K*>(w);
  const __m512i bit4 = _mm512_set1_epi8(0x10);
  // Sub-block s takes bit s of each qh byte; rotating each 64-bit lane left by 4 - s (mod 64) moves
  // it to bit 4 of the same byte. Per [h][high]: the halves' sub-blocks 4h (+1), 4h + 2 (+1).
  const __m512i rotate[2][2] = {{_mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2), _mm512_setr_epi64(3, 3, 3, 3, 1, 1, 1, 1)},
                                {_mm512_setr_epi64(0, 0, 0, 0, 62, 62, 62, 62), _mm512_setr_epi64(63, 63, 63, 63, 61, 61, 61, 61)}};
  return dot_k_affine(a, static_cast<const BlockQ8_K*>(x), n, [&](int64_t i, int h, int high) {
    return _mm512_and_si512(_mm512_rolv_epi64(_mm512_broadcast_i64x4(load256(a[i].qh)), rotate[h][high]), bit4);
  });
}

// Q6_K on 512-bit vectors: the 64 bytes ql[64h, 64h + 64) hold, in their low nibbles, elements
// 128h + [0, 64) and in their high nibbles 128h + [64, 128), each beside 64 contiguous activations;
// the 32 bytes of high bits qh[32h, 32h + 32) are broadcast to both halves and shifted per half.
// The four 128-bit lanes of such a vector are four consecutive groups of 16, so one word permute of
// the 16 scales gives the vpdpwssd factors.
float dot_q6_k(const void* w, const void* x, int64_t n) {
  const auto* a = static_cast<const BlockQ6_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
  // Bits 4-5 of a level come from qh: bits 0-1 (shifted left 4) for elements [0, 32), 2-3 (left 2)
  // for [32, 64), 4-5 for [64, 96), 6-7 (right 2) for [96, 128) of each half of the block.
  const __m512i shift_low = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2), shift_high = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
  // Word w of a scale vector takes scale g + w / 8: words 0-7 group g, 8-15 g + 1, and so on.
  const __m512i word_group = _mm512_setr_epi32(0, 0, 0, 0, 0x10001, 0x10001, 0x10001, 0x10001, 0x20002, 0x20002, 0x20002, 0x20002,
                                                0x30003, 0x30003, 0x30003, 0x30003);
  auto groups = [&](int g) { return _mm512_add_epi16(_mm512_set1_epi16(static_cast<int16_t>(g)), word_group); };
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    simd::prefetch(a + i, sizeof(BlockQ6_K));
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].scales)));
    const __m512i scales = _mm512_castsi256_si512(s16);
    // The levels carry a +32 offset: the sums start at -32 * scale * (sum of x quants), group by group.
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(s16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].bsums))), 5);
    __m512i sums = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_castsi256_si512(offset));
    for (int h = 0; h < 2; ++h) {
      const __m512i packed = _mm512_loadu_si512(a[i].ql + 64 * h);
      const __m512i high = _mm512_broadcast_i64x4(load256(a[i].qh + 32 * h));
      const __m512i lo = _mm512_or_si512(_mm512_and_si512(packed, low4), _mm512_and_si512(_mm512_sllv_epi64(high, shift_low), bits45));
      const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(packed, 4), low4),
                                         _mm512_and_si512(_mm512_srlv_epi64(high, shift_high), bits45));
      const int8_t* x_q = b[i].qs + 128 * h;
      sums = _mm512_dpwssd_epi32(sums, _mm512_maddubs_epi16(lo, _mm512_loadu_si512(x_q)), _mm512_permutexvar_epi16(groups(8 * h), scales));
      sums = _mm512_dpwssd_epi32(sums, _mm512_maddubs_epi16(hi, _mm512_loadu_si512(x_q + 64)), _mm512_permutexvar_epi16(groups(8 * h + 4), scales));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(b[i].d * _cvtsh_ss(a[i].d)), _mm512_cvtepi32_ps(sums), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

}  // namespace longqa::kernels::vnni
