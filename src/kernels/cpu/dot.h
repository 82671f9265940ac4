// Weight types and the dot products between one weight row and one activation row: the inner loop of
// every matmul. Float weights (F32, F16, BF16) meet F32 activations; block-quantized weights meet
// activations quantized to Q8_0 (for Q8_0, Q4_0) or Q8_K (for K-quants), see quant.h.
// `reference_dot_fn` gives the plain scalar definitions; `dot_fn` the fastest path this CPU supports,
// chosen at run time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace longqa::kernels {

// Q4_0x8 is Q4_0 with rows interleaved in eights (BlockQ4_0x8): a layout the loader makes in memory
// for the decode kernels, never a file type. A matrix of it has no addressable single rows.
enum class WType { F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, Q4_0x8 };
enum class ActType { F32, Q8_0, Q8_K };

struct WTypeInfo {
  const char* name;
  int64_t block;       // elements per block (1 for float types)
  size_t block_bytes;  // bytes per block
  ActType act;         // the activation format its dot product takes
  int64_t rows = 1;    // rows interleaved per group (1: rows stored one after another)
};
const WTypeInfo& wtype_info(WType t);
inline const char* wtype_name(WType t) { return wtype_info(t).name; }
// Bytes of a row of n elements (n a multiple of the block size).
size_t row_bytes(WType t, int64_t n);
// Bytes of a row of n activations in the format weights of type t take. A Q8_0 activation row is n/32
// BlockQ8_0 blocks followed by a trailer of two float arrays, each block's scale and its scale times
// the sum of its quants: what the VNNI kernels take once per row instead of once per weight row.
size_t act_row_bytes(WType t, int64_t n);

// Writes the activation row x (n floats) in the format weights of type t take; for float types the
// activations are used as they are and nothing is written.
void quantize_activation(WType t, const float* x, void* out, int64_t n);

using DotFn = float (*)(const void* w, const void* x, int64_t n);  // null for interleaved types
DotFn reference_dot_fn(WType t);
DotFn dot_fn(WType t);

// Float rows four at a time (rows at w, w + row_stride bytes, ...), y[k] = row k . x: one load of
// the activations serves four rows, for rows too wide for one row's activations to stay in L1 while
// the weights stream past them (see matmul.cpp). Null where the CPU has no such path or t is not a
// float type.
using Dot4Fn = void (*)(const void* w, size_t row_stride, const void* x, int64_t n, float* y);
Dot4Fn dot4_fn(WType t);

// The interleaved types' dot products: y[r] = row r . x for each row of one group (wtype_info(t).rows
// rows, whose bytes start at w). Null for the other types.
using GroupDotFn = void (*)(const void* w, const void* x, int64_t n, float* y);
GroupDotFn reference_group_dot_fn(WType t);
GroupDotFn group_dot_fn(WType t);
// The interleaved layout this CPU has a fast decode kernel for, for a matrix of type t and `rows` rows;
// t itself where there is none (only Q4_0 has one, on AVX2 and on AVX-512 VNNI, for rows a multiple
// of 8).
WType decode_layout(WType t, int64_t rows);

// Converts (dequantizes) n elements of a weight row to F32. Not for interleaved types (no single rows:
// see the MatrixView form in matmul.h); throws std::logic_error for them, as from_f32 does.
void to_f32(WType t, const void* src, float* dst, int64_t n);
// Encodes n floats as a row of type t (row_bytes(t, n) bytes): the inverse of to_f32, up to rounding.
void from_f32(WType t, const float* src, void* dst, int64_t n);

// y += a * x over n floats (the value accumulation of attention), fastest path for this CPU.
void axpy(float a, const float* x, float* y, int64_t n);

namespace reference {
float dot_f32(const void* w, const void* x, int64_t n);
float dot_f16(const void* w, const void* x, int64_t n);
float dot_bf16(const void* w, const void* x, int64_t n);
}  // namespace reference

namespace avx2 {
void axpy(float a, const float* x, float* y, int64_t n);
void f16_to_f32_row(const void* src, float* dst, int64_t n);
void bf16_to_f32_row(const void* src, float* dst, int64_t n);
float dot_f32(const void* w, const void* x, int64_t n);
float dot_f16(const void* w, const void* x, int64_t n);
float dot_bf16(const void* w, const void* x, int64_t n);
void dot4_f32(const void* w, size_t row_stride, const void* x, int64_t n, float* y);
void dot4_f16(const void* w, size_t row_stride, const void* x, int64_t n, float* y);
void dot4_bf16(const void* w, size_t row_stride, const void* x, int64_t n, float* y);
}  // namespace avx2

}  // namespace longqa::kernels
