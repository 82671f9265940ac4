// Dot products between a weight row (F32, F16 or BF16) and an F32 activation vector: the inner loop
// of every matmul. `reference` functions are the plain scalar definitions the fast paths are tested
// against; `dot_fn(type)` returns the fastest path this CPU supports (chosen at run time).
#pragma once

#include <cstddef>
#include <cstdint>

namespace longqa::kernels {

enum class WType { F32, F16, BF16 };
const char* wtype_name(WType t);
inline size_t wtype_size(WType t) { return t == WType::F32 ? 4 : 2; }

using DotFn = float (*)(const void* w, const float* x, int64_t n);

namespace reference {
float dot_f32(const void* w, const float* x, int64_t n);
float dot_f16(const void* w, const float* x, int64_t n);
float dot_bf16(const void* w, const float* x, int64_t n);
}  // namespace reference

namespace avx2 {
float dot_f32(const void* w, const float* x, int64_t n);
float dot_f16(const void* w, const float* x, int64_t n);
float dot_bf16(const void* w, const float* x, int64_t n);
}  // namespace avx2

DotFn reference_dot_fn(WType t);
DotFn dot_fn(WType t);

// Converts n elements of a weight row to F32.
void to_f32(WType t, const void* src, float* dst, int64_t n);

}  // namespace longqa::kernels
