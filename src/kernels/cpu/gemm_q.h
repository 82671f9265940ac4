// Prompt processing for block-quantized weights: a tiled int8 matrix product. Weight rows are unpacked
// (per call, once per row) into unsigned 8-bit levels with a float scale and offset per 16 elements;
// activations are quantized to signed 8 bits per 32; a micro-kernel then multiplies tiles of 16 rows x
// 16 tokens, one group of K (16 or 32 elements: as far as one scale reaches) at a time: AMX-INT8 where
// the CPU has it, else AVX-512 VNNI. Used for batches of tokens on CPUs with VNNI; single tokens
// (decode) keep the per-row dot products of matmul.cpp. Interleaved Q4_0 (Q4_0x8) is unpacked a row
// at a time after taking the row back out of its group, into the same levels as Q4_0.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/matmul.h"

namespace longqa::kernels {

// Whether gemm_q can run weights of type t on this CPU.
bool gemm_q_available(WType t);

// The micro-kernels: AMX-INT8 where the CPU has it, else AVX-512 VNNI. Auto picks the fastest; tests
// name each.
enum class GemmKernel { Auto, Vnni, Amx };
bool gemm_kernel_available(GemmKernel k);

// Same contract as matmul(); results differ from it only by the activations' 8-bit rounding (per 32
// elements here, per 32 or 256 there).
void gemm_q(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch,
            GemmKernel kernel = GemmKernel::Auto);

// One token's activations as the micro-kernels take them: int8 levels per 32 with a scale, and the
// scaled sum of each 16-element half. The scalar definition; vnni::pack_activation is the same, bit
// for bit, vectorised.
void pack_activation(const float* x, int64_t blocks, int8_t* q, float* d, float* half_sums);

// 16 weight rows unpacked to levels and 16 tokens' activations, laid out per group of K for the
// micro-kernels.
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
// Both micro-kernels compute, for r, t < 16:
// out[r * 16 + t] = sum_g scale[r][g] * dx[t][g] * (levels[r][g] . x[t][g]) - offset[r][g] * x_sums[g][t],
// levels unsigned; where offsets is null (AMX only), levels are signed and the offset term is absent.

namespace vnni {
void pack_activation(const float* x, int64_t blocks, int8_t* q, float* d, float* half_sums);
void tile_16x16(const TileOperands& o, float* out);
}  // namespace vnni

namespace amx {
void configure(int group);  // loads the tile configuration for groups of 16 or 32 on the calling thread
void release();
void tile_16x16(const TileOperands& o, float* out);
}  // namespace amx

}  // namespace longqa::kernels
