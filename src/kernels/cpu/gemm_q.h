// Prompt processing for block-quantized weights: a tiled int8 matrix product. Weight rows are unpacked
// (per call, once per row) into unsigned 8-bit levels with a float scale and offset per 16 elements;
// activations are quantized to signed 8 bits per 32; an AVX-512-VNNI micro-kernel (256-bit dpbusd)
// then multiplies tiles of 4 rows x 4 tokens. Used for batches of tokens on CPUs with VNNI; single
// tokens (decode) keep the per-row dot products of matmul.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/matmul.h"

namespace longqa::kernels {

// Whether gemm_q can run weights of type t on this CPU.
bool gemm_q_available(WType t);

// Same contract as matmul(); results differ from it only by the activations' 8-bit rounding (per 32
// elements here, per 32 or 256 there).
void gemm_q(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch);

// Weight rows and activation rows in the form the micro-kernel takes (exposed for tests).
struct PackedRows {
  int64_t blocks = 0;              // 32-element blocks per row
  std::vector<uint8_t> levels;     // [row][blocks * 32], unsigned
  std::vector<float> scales;       // [row][blocks * 2], one per 16 elements
  std::vector<float> offsets;      // [row][blocks * 2], subtracted times the activation sums
};
void unpack_rows(const MatrixView& w, int64_t first_row, int64_t n_rows, PackedRows& out);

namespace vnni {
// y[r * y_stride + t] for r < 4, t < n_tokens (<= 4) over `blocks` blocks: the integer part
// sum_b dx[t][b] * (scale[r][b][0] * dot_a + scale[r][b][1] * dot_b).
void tile_4xn(const uint8_t* levels, const float* scales, int64_t blocks, const int8_t* const* xq, const float* const* dx,
              int n_tokens, float* out);
}  // namespace vnni

}  // namespace longqa::kernels
