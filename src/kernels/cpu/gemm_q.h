// Prompt processing for block-quantized weights: a tiled int8 matrix product. Weight rows are unpacked
// (per call, once per row) into unsigned 8-bit levels with a float scale and offset per 16 elements;
// activations are quantized to signed 8 bits per 32; a micro-kernel then multiplies tiles of rows x
// tokens: AMX-INT8 (16 x 16) or AVX-512 VNNI (256-bit dpbusd, 4 x 4). Used for batches of tokens on
// CPUs with VNNI; single tokens (decode) keep the per-row dot products of matmul.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/matmul.h"

namespace longqa::kernels {

// Whether gemm_q can run weights of type t on this CPU.
bool gemm_q_available(WType t);

// The micro-kernels: AMX-INT8 tiles where the CPU has them (16 rows x 16 tokens), else AVX-512 VNNI
// (4 x 4). Auto picks the fastest; tests name each.
enum class GemmKernel { Auto, Vnni, Amx };
bool gemm_kernel_available(GemmKernel k);

// Same contract as matmul(); results differ from it only by the activations' 8-bit rounding (per 32
// elements here, per 32 or 256 there).
void gemm_q(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch,
            GemmKernel kernel = GemmKernel::Auto);

// Weight rows and activation rows in the form the micro-kernel takes (exposed for tests).
struct PackedRows {
  int64_t blocks = 0;              // 32-element blocks per row
  std::vector<uint8_t> levels;     // [row][blocks * 32], unsigned
  std::vector<float> scales;       // [row][blocks * 2], one per 16 elements
  std::vector<float> offsets;      // [row][blocks * 2], subtracted times the activation sums
};
void unpack_rows(const MatrixView& w, int64_t first_row, int64_t n_rows, PackedRows& out);

// One token's activations as the micro-kernels take them: int8 levels per 32 with a scale, and the
// scaled sum of each 16-element half. The scalar definition; vnni::pack_activation is the same, bit
// for bit, vectorised.
void pack_activation(const float* x, int64_t blocks, int8_t* q, float* d, float* half_sums);

namespace vnni {
void pack_activation(const float* x, int64_t blocks, int8_t* q, float* d, float* half_sums);
// y[r * y_stride + t] for r < 4, t < n_tokens (<= 4) over `blocks` blocks: the integer part
// sum_b dx[t][b] * (scale[r][b][0] * dot_a + scale[r][b][1] * dot_b).
void tile_4xn(const uint8_t* levels, const float* scales, int64_t blocks, const int8_t* const* xq, const float* const* dx,
              int n_tokens, float* out);
}  // namespace vnni

namespace amx {
void configure(int group);  // loads the tile configuration for groups of 16 or 32 on the calling thread
void release();
// 16 unpacked weight rows (PackedRows) and 16 tokens' activations, laid out per group of K.
struct TileOperands {
  int group = 32;  // elements of K per integer product: 16 or 32
  int64_t groups = 0;
  const uint8_t* levels = nullptr;  // [group][16 rows][group bytes]: each weight tile contiguous
  const float* scales = nullptr;    // [16 rows][one per 16 elements of the row]
  const float* offsets = nullptr;   // likewise; null where the levels are signed and centred (no offset)
  const int8_t* x_tiles = nullptr;  // [group][group / 4][16 tokens][4]
  const float* dx = nullptr;        // [block of 32][16 tokens]
  const float* x_sums = nullptr;    // [group][16 tokens]: dx times the sum of the group's levels
};
// out[r * 16 + t] = sum_g scale[r][g] * dx[t][g] * (levels[r][g] . x[t][g]) - offset[r][g] * x_sums[g][t],
// levels unsigned; where offsets is null, levels are signed and the offset term is absent.
void tile_16x16(const TileOperands& o, float* out);
}  // namespace amx

}  // namespace longqa::kernels
