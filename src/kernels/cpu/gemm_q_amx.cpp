// The AMX-INT8 micro-kernel of gemm_q: 16 weight rows x 16 tokens, one group of K at a time, 32
// elements where a block's two 16-element halves share their scale and offset, 16 where they do not
// (Q6_K): the integer sums cannot run past a scale. Each group is one tdpbusd of a 16 x group weight
// tile by a group x 16 activation tile (tdpbssd where the weights' levels are signed and centred:
// Q8_0, Q4_0, which then need no offset term); the 16x16 int32 result is stored and rescaled into float
// accumulators with AVX-512. Compiled with AMX and AVX-512; entered only after the run-time check
// (cpu_features().amx_int8, which also asked the kernel for the tile state).
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/gemm_q.h"

namespace longqa::kernels::amx {
namespace {

// Palette 1: tmm0 weights (16 rows x group bytes), tmm1 activations (group / 4 rows x 64 bytes: 16
// tokens x 4 consecutive elements of K), tmm2 the int32 products (16 rows x 16 tokens).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

TileConfig config_for(int group) {
  TileConfig c;
  c.colsb[0] = static_cast<uint16_t>(group), c.rows[0] = 16;
  c.colsb[1] = 64, c.rows[1] = static_cast<uint8_t>(group / 4);
  c.colsb[2] = 64, c.rows[2] = 16;
  return c;
}

}  // namespace

void configure(int group) {
  static const TileConfig config16 = config_for(16), config32 = config_for(32);
  _tile_loadconfig(group == 32 ? &config32 : &config16);
}

void release() { _tile_release(); }

namespace {

template <bool kSigned>
void tile_16x16(const TileOperands& o, float* out) {
  __m512 acc[16];
  for (auto& a : acc) a = _mm512_setzero_ps();
  alignas(64) int32_t products[16][16];
  const int64_t per_scale = o.group / 16, per_block = 32 / o.group;  // scales are per 16 elements, dx per 32
  const auto scale_stride = static_cast<size_t>(o.groups * per_scale);  // a row's scales
  for (int64_t g = 0; g < o.groups; ++g) {
    _tile_loadd(0, o.levels + g * o.group * 16, o.group);
    _tile_loadd(1, o.x_tiles + g * o.group * 16, 64);
    _tile_zero(2);
    if constexpr (kSigned) _tile_dpbssd(2, 0, 1);
    else _tile_dpbusd(2, 0, 1);
    _tile_stored(2, products, 64);
    const __m512 d = _mm512_loadu_ps(o.dx + (g / per_block) * 16);  // the 16 tokens' scales for this block
    const __m512 sums = kSigned ? __m512{} : _mm512_loadu_ps(o.x_sums + g * 16);  // and their sums over this group
    for (int m = 0; m < 16; ++m) {
      const size_t at = static_cast<size_t>(m) * scale_stride + static_cast<size_t>(g * per_scale);
      const __m512 s = _mm512_mul_ps(_mm512_set1_ps(o.scales[at]), d);
      // (The masked conversion: GCC 12 warns of the unmasked one's undefined pass-through operand.)
      acc[m] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_load_si512(products[m])), s, acc[m]);
      if constexpr (!kSigned) acc[m] = _mm512_fnmadd_ps(_mm512_set1_ps(o.offsets[at]), sums, acc[m]);
    }
  }
  for (int m = 0; m < 16; ++m) _mm512_storeu_ps(out + m * 16, acc[m]);
}

}  // namespace

void tile_16x16(const TileOperands& o, float* out) { o.offsets ? tile_16x16<false>(o, out) : tile_16x16<true>(o, out); }

}  // namespace longqa::kernels::amx
