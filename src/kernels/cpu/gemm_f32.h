// Prompt processing for float weights (F32, F16, BF16) on CPUs with AVX-512 but without AMX-BF16
// (gemm_bf16.h): products in float with FMA. Each thread takes panels of 64 weight rows; per slice of
// 256 elements of K the panel's rows are widened to F32 and transposed to K-major in registers (64
// KiB, in L2), then groups of 6 tokens run over it with their 6 x 64 sums in 24 registers, the weights'
// 64 rows four vectors wide and each activation broadcast from memory. The products are exact (a widened F16 or
// BF16 weight is its stored value); only the order of the sums differs from matmul_reference.
// Single tokens (decode) keep the per-row dot products of matmul.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/matmul.h"

namespace longqa::kernels {

// Whether gemm_f32 can run w on this CPU: F32, F16 or BF16 weights and AVX-512F.
bool gemm_f32_available(const MatrixView& w);

// Same contract as matmul(); `scratch` holds each thread's panel (64 KiB a thread).
void gemm_f32(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch);

namespace avx512 {
void gemm_f32(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch);
}

}  // namespace longqa::kernels
