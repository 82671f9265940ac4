// Small AVX2 helpers shared by the kernels compiled for AVX2 (include only from such files).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace longqa::kernels::simd {

// Weights stream from memory once per token, and the hardware prefetcher alone leaves the dot loops
// waiting on DRAM (Q4_0 rows streamed at 3 GB/s per core without this, 9 GB/s with it; see
// BENCHMARKS.md). Loops ask for the bytes they will need this far ahead: 2 KiB was the best of 0.5–4
// KiB on a Xeon when weights sat on 4 KiB pages; on 2 MiB pages a Zen 5 decodes 5–10% faster with
// 4 KiB than with 2 (1 KiB slower, 8 KiB the same as 4).
constexpr int kPrefetchBytes = 4096;

inline void prefetch(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p) + kPrefetchBytes;
  for (size_t off = 0; off < bytes; off += 64) _mm_prefetch(c + off, _MM_HINT_T0);
}

inline float hsum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// The F16 scales of 8 consecutive blocks (the first field of each, `Block` bytes apart) as 8 floats:
// one gather and one conversion, where one block at a time costs a scalar load and conversion each.
template <typename Block>
inline __m256 scales8(const Block* b) {
  static_assert(offsetof(Block, d) == 0);
  constexpr int s = sizeof(Block);
  const __m256i dwords = _mm256_i32gather_epi32(reinterpret_cast<const int*>(b), _mm256_setr_epi32(0, s, 2 * s, 3 * s, 4 * s, 5 * s, 6 * s, 7 * s), 1);
  // The low half of each dword, packed into the low 128 bits.
  const __m256i halves = _mm256_shuffle_epi8(dwords, _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                                                      0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1));
  return _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permute4x64_epi64(halves, 0x08)));
}

// Element i of a float array in a Q8_0 activation row's trailer (see act_row_bytes), which need not
// be 4-byte aligned.
inline float trailer_at(const float* trailer, int64_t i) {
  float v;
  std::memcpy(&v, trailer + i, sizeof v);
  return v;
}

// The four bytes at p in every 32-bit lane: the activations one lane's four levels meet.
inline __m256i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}

// Lane k of v in every lane.
inline __m256 lane(__m256 v, int k) { return _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(k)); }

inline __m256 load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

inline __m256 load_bf16(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

}  // namespace longqa::kernels::simd
