// AVX2 + FMA + F16C dot products. This file alone is compiled with those instructions enabled; its
// functions are reached only through dot_fn() after the run-time CPU check.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/dot.h"
#include "kernels/cpu/simd_avx2.h"
#include "util/fp16.h"

namespace longqa::kernels::avx2 {
namespace {

using simd::hsum;
using simd::load_bf16;
using simd::load_f16;

inline __m256 load_f32(const float* p) { return _mm256_loadu_ps(p); }
inline float scalar_f32(float v) { return v; }

// Loads are unaligned throughout: mapped weights may sit at any byte offset.
template <typename T, typename Load, typename Scalar>
float dot(const T* a, const float* x, int64_t n, Load load, Scalar scalar) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    simd::prefetch(a + i, 32 * sizeof(T));
    s0 = _mm256_fmadd_ps(load(a + i), _mm256_loadu_ps(x + i), s0);
    s1 = _mm256_fmadd_ps(load(a + i + 8), _mm256_loadu_ps(x + i + 8), s1);
    s2 = _mm256_fmadd_ps(load(a + i + 16), _mm256_loadu_ps(x + i + 16), s2);
    s3 = _mm256_fmadd_ps(load(a + i + 24), _mm256_loadu_ps(x + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load(a + i), _mm256_loadu_ps(x + i), s0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; ++i) {
    T v;
    std::memcpy(&v, a + i, sizeof v);
    s += scalar(v) * x[i];
  }
  return s;
}

// Four rows `stride` elements apart, each 8 activations loaded once for all four. Two accumulators a
// row (eight in all, with the two activation vectors within AVX2's sixteen registers), so a row's
// sum runs in another order than dot()'s.
template <typename T, typename Load, typename Scalar>
void dot4(const T* a, size_t stride, const float* x, int64_t n, float* y, Load load, Scalar scalar) {
  __m256 s[4][2];
  for (auto& row : s) row[0] = row[1] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      s[k][0] = _mm256_fmadd_ps(load(a + k * stride + i), x0, s[k][0]);
      s[k][1] = _mm256_fmadd_ps(load(a + k * stride + i + 8), x1, s[k][1]);
    }
  }
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 4; ++k) s[k][0] = _mm256_fmadd_ps(load(a + k * stride + i), _mm256_loadu_ps(x + i), s[k][0]);
  for (int k = 0; k < 4; ++k) {
    float sum = hsum(_mm256_add_ps(s[k][0], s[k][1]));
    for (int64_t j = i; j < n; ++j) {
      T v;
      std::memcpy(&v, a + k * stride + j, sizeof v);
      sum += scalar(v) * x[j];
    }
    y[k] = sum;
  }
}

template <typename Load, typename Scalar>
void convert_row(const uint16_t* h, float* dst, int64_t n, Load load, Scalar scalar) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load(h + i));
  for (; i < n; ++i) {
    uint16_t v;
    std::memcpy(&v, h + i, sizeof v);
    dst[i] = scalar(v);
  }
}

}  // namespace

void f16_to_f32_row(const void* src, float* dst, int64_t n) { convert_row(static_cast<const uint16_t*>(src), dst, n, load_f16, f16_to_f32); }

void bf16_to_f32_row(const void* src, float* dst, int64_t n) {
  convert_row(static_cast<const uint16_t*>(src), dst, n, load_bf16, bf16_to_f32);
}

void axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

float dot_f32(const void* w, const void* x, int64_t n) {
  return dot(static_cast<const float*>(w), static_cast<const float*>(x), n, load_f32, scalar_f32);
}

float dot_f16(const void* w, const void* x, int64_t n) {
  return dot(static_cast<const uint16_t*>(w), static_cast<const float*>(x), n, load_f16, f16_to_f32);
}

float dot_bf16(const void* w, const void* x, int64_t n) {
  return dot(static_cast<const uint16_t*>(w), static_cast<const float*>(x), n, load_bf16, bf16_to_f32);
}

void dot4_f32(const void* w, size_t row_stride, const void* x, int64_t n, float* y) {
  dot4(static_cast<const float*>(w), row_stride / sizeof(float), static_cast<const float*>(x), n, y, load_f32,
       scalar_f32);
}

void dot4_f16(const void* w, size_t row_stride, const void* x, int64_t n, float* y) {
  dot4(static_cast<const uint16_t*>(w), row_stride / 2, static_cast<const float*>(x), n, y, load_f16, f16_to_f32);
}

void dot4_bf16(const void* w, size_t row_stride, const void* x, int64_t n, float* y) {
  dot4(static_cast<const uint16_t*>(w), row_stride / 2, static_cast<const float*>(x), n, y, load_bf16, bf16_to_f32);
}

}  // namespace longqa::kernels::avx2
