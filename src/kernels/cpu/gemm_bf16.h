// Prompt processing for F16 and BF16 weights on AMX-BF16 tiles (16 weight rows x 16 tokens, 32
// elements of K per product, float accumulators held in the tiles across K).
//
// AMX multiplies BF16 (8 significant bits); F16 weights carry 11 and activations 24. Each value is
// therefore split into two BF16 parts, v = hi + lo with hi = bf16(v), lo = bf16(v - hi): exact for
// F16 and BF16 weights, within 2^-16 relative for a float activation. Three products per pair,
// w_hi x_hi + w_lo x_hi + w_hi x_lo (the dropped w_lo x_lo is below 2^-16 of the product), keep the
// result within about 2^-15 of the float product of matmul_reference. BF16 weights have no lo part:
// two products. Weights are split per call, a panel of rows x 512 elements at a time per thread;
// single tokens (decode) keep the per-row dot products of matmul.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/matmul.h"

namespace longqa::kernels {

// Whether gemm_bf16 can run w on this CPU: F16 or BF16 weights, rows a multiple of 32 elements, and
// AMX-BF16 with AVX-512 BF16 conversions.
bool gemm_bf16_available(const MatrixView& w);

// Same contract as matmul(); results differ from matmul_reference by the split's rounding only.
void gemm_bf16(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch);

namespace amx {
void gemm_bf16(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch);
}

}  // namespace longqa::kernels
