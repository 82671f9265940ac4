// Queries against one tile of keys and values, with AVX-512F: each query's 64 scores in four
// registers (from keys laid out transposed, each element of the query broadcast once against 64
// keys; or from keys as stored, each row widened once for up to four queries, the sums across lanes
// of 16 keys taken together), exponentials evaluated in vectors, the outputs accumulated in registers
// over the tile's values. Compiled with
// AVX-512F; entered only after the run-time CPU check.
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through their masked builtins, which
// -W(maybe-)uninitialized reports at every inlined use: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/quant.h"
#include "util/fp16.h"

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

// Elements [i, i + 16) of a row of F32, F16, BF16 or Q8_0 as floats (the values to_f32 gives).
template <WType kType>
__m512 load16(const void* row, int64_t i) {
  if constexpr (kType == WType::F32) {
    return _mm512_loadu_ps(static_cast<const float*>(row) + i);
  } else if constexpr (kType == WType::Q8_0) {
    const BlockQ8_0& block = static_cast<const BlockQ8_0*>(row)[i / kQK];
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs + i % kQK));
    return _mm512_mul_ps(_mm512_set1_ps(f16_to_f32(block.d)), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)));
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + i));
    if constexpr (kType == WType::F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// Turns one query's tile of scores q . k_j (s: four vectors of 16 keys) into weights p[j] = e^(scale
// s_j - new max) and folds them into the query's online-softmax state; keys outside [lo, hi) are
// masked out of the maximum and weigh 0. Returns the factor the query's earlier output is scaled by.
float softmax_tile(__m512 s[4], int64_t lo, int64_t hi, float scale, float& running_max, float& running_sum, float* p) {
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
  __m512 sum = _mm512_setzero_ps();
  for (int v = 0; v < 4; ++v) {
    const __m512 e = _mm512_maskz_mov_ps(valid[v], exp_nonpositive(_mm512_sub_ps(s[v], _mm512_set1_ps(new_max))));
    _mm512_store_ps(p + 16 * v, e);
    sum = _mm512_add_ps(sum, e);
  }
  running_sum = running_sum * correction + _mm512_reduce_add_ps(sum);
  running_max = new_max;
  return correction;
}

// out_g = correction_g out_g + sum_j p_g[j] v_j over keys [lo, hi) for kG queries (p: [kG][kTile];
// out: kG rows of head_dim), each value row widened once for all of them. The head is taken in
// slices small enough that the kG x slice accumulators stay in registers.
template <int kChunks, WType kType, int kG>
void accumulate_values(const float* p, const float* correction, const void* values, int64_t lo, int64_t hi,
                       float* out) {
  constexpr int64_t head_dim = 16 * kChunks;
  constexpr int kSlice = std::min(kChunks, 16 / kG);
  for (int c0 = 0; c0 < kChunks; c0 += kSlice) {
    __m512 acc[kG][kSlice];
    for (int g = 0; g < kG; ++g)
      for (int c = 0; c < kSlice; ++c)
        acc[g][c] = _mm512_mul_ps(_mm512_loadu_ps(out + g * head_dim + 16 * (c0 + c)), _mm512_set1_ps(correction[g]));
    for (int64_t j = lo; j < hi; ++j)
      for (int c = 0; c < kSlice; ++c) {
        const __m512 v = load16<kType>(values, j * head_dim + 16 * (c0 + c));
        for (int g = 0; g < kG; ++g) acc[g][c] = _mm512_fmadd_ps(_mm512_set1_ps(p[g * kTile + j]), v, acc[g][c]);
      }
    for (int g = 0; g < kG; ++g)
      for (int c = 0; c < kSlice; ++c) _mm512_storeu_ps(out + g * head_dim + 16 * (c0 + c), acc[g][c]);
  }
}

// Scores over transposed keys: each element of the query broadcast once against 64 keys.
template <int kChunks>
void key_tile(const float* q, const float* keys_t, const float* values, int64_t lo, int64_t hi, float scale,
              float& running_max, float& running_sum, float* out) {
  constexpr int64_t head_dim = 16 * kChunks;
  const int vectors = static_cast<int>((hi + 15) / 16);
  __m512 s[4];
  for (auto& v : s) v = _mm512_setzero_ps();
  for (int64_t d = 0; d < head_dim; ++d) {
    const __m512 qd = _mm512_set1_ps(q[d]);
    for (int v = 0; v < vectors; ++v) s[v] = _mm512_fmadd_ps(qd, _mm512_loadu_ps(keys_t + d * kTile + 16 * v), s[v]);
  }
  alignas(64) float p[kTile];
  const float correction = softmax_tile(s, lo, hi, scale, running_max, running_sum, p);
  accumulate_values<kChunks, WType::F32, 1>(p, &correction, values, lo, hi, out);
}

// The sums of the 16 lanes of each of v[0..15], in that order: halves, quarters, pairs and single
// lanes of two vectors at a time added together (46 operations, where 16 separate sums take 128).
__m512 sum_lanes16(const __m512 v[16]) {
  __m512 halves[8], quarters[4], pairs[2];
  for (int i = 0; i < 8; ++i)  // 128-bit lanes 0-1: v[2i]'s 8 partial sums, 2-3: v[2i + 1]'s
    halves[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                              _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; ++i)  // 128-bit lane L: the 4 partial sums of v[4i + L]
    quarters[i] = _mm512_add_ps(_mm512_shuffle_f32x4(halves[2 * i], halves[2 * i + 1], 0x88),
                                _mm512_shuffle_f32x4(halves[2 * i], halves[2 * i + 1], 0xDD));
  for (int i = 0; i < 2; ++i)  // lane L: two partial sums of v[8i + L], then two of v[8i + 4 + L]
    pairs[i] = _mm512_add_ps(_mm512_shuffle_ps(quarters[2 * i], quarters[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(quarters[2 * i], quarters[2 * i + 1], 0xEE));
  // Element 4L + p: the sum of v[L + 4p]; permuted into order.
  const __m512 sums =
      _mm512_add_ps(_mm512_shuffle_ps(pairs[0], pairs[1], 0x88), _mm512_shuffle_ps(pairs[0], pairs[1], 0xDD));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), sums);
}

// Scores of kG queries (q: kG rows of head_dim) over keys as stored, row by row: each key widened once
// for all of them, the products of 16 keys with a query summed across lanes together. Keys outside
// [lo, hi) in a group of 16 score as the nearest key inside does (softmax_tile masks them), so that
// no row outside the tile is read. running_max, running_sum and out: the kG queries' own.
template <int kChunks, WType kType, int kG>
void key_rows(const float* q, const void* keys, const void* values, int64_t lo, int64_t hi, float scale,
              float* running_max, float* running_sum, float* out) {
  constexpr int64_t head_dim = 16 * kChunks;
  __m512 s[kG][4];
  for (int64_t v = 0; v < 4; ++v) {
    for (int g = 0; g < kG; ++g) s[g][v] = _mm512_setzero_ps();
    if (16 * v >= hi || 16 * v + 16 <= lo) continue;
    __m512 products[kG][16];
#pragma GCC unroll 16
    for (int64_t k = 0; k < 16; ++k) {
      const int64_t j = std::clamp(16 * v + k, lo, hi - 1);
      for (int c = 0; c < kChunks; ++c) {
        const __m512 key = load16<kType>(keys, j * head_dim + 16 * c);
        for (int g = 0; g < kG; ++g) {
          const __m512 qc = _mm512_loadu_ps(q + g * head_dim + 16 * c);
          products[g][k] = c == 0 ? _mm512_mul_ps(qc, key) : _mm512_fmadd_ps(qc, key, products[g][k]);
        }
      }
    }
    for (int g = 0; g < kG; ++g) s[g][v] = sum_lanes16(products[g]);
  }
  alignas(64) float p[kG][kTile];
  float correction[kG];
  for (int g = 0; g < kG; ++g) correction[g] = softmax_tile(s[g], lo, hi, scale, running_max[g], running_sum[g], p[g]);
  accumulate_values<kChunks, kType, kG>(p[0], correction, values, lo, hi, out);
}

// Calls f with std::integral_constant<int, head_dim / 16>.
template <typename F>
void with_chunks(int64_t head_dim, F&& f) {
  switch (head_dim) {
    case 64:
      return f(std::integral_constant<int, 4>{});
    case 128:
      return f(std::integral_constant<int, 8>{});
    case 32:
      return f(std::integral_constant<int, 2>{});
    case 256:
      return f(std::integral_constant<int, 16>{});
    default:
      return f(std::integral_constant<int, 1>{});  // 16 (attend checks)
  }
}

}  // namespace

void attend_key_tile(const float* q, const float* keys_t, const float* values, int64_t lo, int64_t hi, int64_t head_dim,
                     float scale, float& running_max, float& running_sum, float* out) {
  with_chunks(head_dim, [&](auto chunks) {
    key_tile<decltype(chunks)::value>(q, keys_t, values, lo, hi, scale, running_max, running_sum, out);
  });
}

void attend_key_rows(const float* q, int64_t queries, WType type, const void* keys, const void* values, int64_t lo,
                     int64_t hi, int64_t head_dim, float scale, float* running_max, float* running_sum, float* out) {
  with_chunks(head_dim, [&](auto chunks) {
    constexpr int kChunks = decltype(chunks)::value;
    // Four queries at a time share each widened key and value, then two, then one.
    auto next = [&](auto size) {
      constexpr int kG = decltype(size)::value;
      auto rows = [&](auto as_type) {
        key_rows<kChunks, decltype(as_type)::value, kG>(q, keys, values, lo, hi, scale, running_max, running_sum, out);
      };
      if (type == WType::F16)
        rows(std::integral_constant<WType, WType::F16>{});
      else if (type == WType::BF16)
        rows(std::integral_constant<WType, WType::BF16>{});
      else if (type == WType::Q8_0)
        rows(std::integral_constant<WType, WType::Q8_0>{});
      else
        rows(std::integral_constant<WType, WType::F32>{});
      q += kG * head_dim;
      out += kG * head_dim;
      running_max += kG;
      running_sum += kG;
      queries -= kG;
    };
    while (queries >= 4) next(std::integral_constant<int, 4>{});
    if (queries >= 2) next(std::integral_constant<int, 2>{});
    if (queries == 1) next(std::integral_constant<int, 1>{});
  });
}

}  // namespace longqa::kernels::avx512
