#include "kernels/cpu/gemm_q.h"

#include <emmintrin.h>  // SSE2: baseline x86-64, like the rest of this file
#include <xmmintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/quant.h"
#include "util/fp16.h"

namespace longqa::kernels {
namespace {

// Where a weight row's unpacked levels go: element k at at[(k / group) * group_stride + k % group], as
// the level minus `centre`. A group is 16 or 32 elements: as far as one scale reaches.
struct LevelLayout {
  uint8_t* at;
  int group;
  size_t group_stride;
  uint8_t centre;
};

// Block i's 32 levels, given as two halves of 16.
void store_block(__m128i first, __m128i second, int64_t i, const LevelLayout& out) {
  const __m128i centre = _mm_set1_epi8(static_cast<char>(out.centre));
  first = _mm_sub_epi8(first, centre), second = _mm_sub_epi8(second, centre);
  const auto half = static_cast<size_t>(2 * i);
  uint8_t* a = out.group == 32 ? out.at + static_cast<size_t>(i) * out.group_stride : out.at + half * out.group_stride;
  uint8_t* b = out.group == 32 ? a + 16 : out.at + (half + 1) * out.group_stride;
  _mm_storeu_si128(reinterpret_cast<__m128i*>(a), first);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(b), second);
}

// One weight row as levels u in 0..255 with w = scale_h * u - offset_h per 16-element half h.
void unpack_row(WType t, const void* row, int64_t cols, const LevelLayout& q, float* scales, float* offsets) {
  const int64_t blocks = cols / 32;
  alignas(16) uint8_t levels[kQKK];
  auto load = [&](int at) { return _mm_load_si128(reinterpret_cast<const __m128i*>(levels + at)); };
  switch (t) {
    case WType::Q8_0: {
      const auto* b = static_cast<const BlockQ8_0*>(row);
      const __m128i bias = _mm_set1_epi8(static_cast<char>(0x80));  // + 128, modulo 256
      for (int64_t i = 0; i < blocks; ++i) {
        const float d = f16_to_f32(b[i].d);
        const auto* qs = reinterpret_cast<const __m128i*>(b[i].qs);
        store_block(_mm_xor_si128(_mm_loadu_si128(qs), bias), _mm_xor_si128(_mm_loadu_si128(qs + 1), bias), i, q);
        scales[2 * i] = scales[2 * i + 1] = d;
        offsets[2 * i] = offsets[2 * i + 1] = 128 * d;
      }
      break;
    }
    case WType::Q4_0: {
      const auto* b = static_cast<const BlockQ4_0*>(row);
      const __m128i low = _mm_set1_epi8(0xF);
      for (int64_t i = 0; i < blocks; ++i) {
        const float d = f16_to_f32(b[i].d);
        const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs));
        store_block(_mm_and_si128(qs, low), _mm_and_si128(_mm_srli_epi16(qs, 4), low), i, q);
        scales[2 * i] = scales[2 * i + 1] = d;
        offsets[2 * i] = offsets[2 * i + 1] = 8 * d;
      }
      break;
    }
    case WType::Q4_K:
    case WType::Q5_K: {
      uint8_t sc[8], mn[8];
      for (int64_t s = 0; s < cols / kQKK; ++s) {
        float d, dmin;
        if (t == WType::Q4_K) {
          const auto& b = static_cast<const BlockQ4_K*>(row)[s];
          reference::unpack_q4_k(b, levels, sc, mn);
          d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
        } else {
          const auto& b = static_cast<const BlockQ5_K*>(row)[s];
          reference::unpack_q5_k(b, levels, sc, mn);
          d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
        }
        for (int j = 0; j < 8; ++j) {
          const int64_t i = 8 * s + j;
          store_block(load(32 * j), load(32 * j + 16), i, q);
          scales[2 * i] = scales[2 * i + 1] = d * sc[j];
          offsets[2 * i] = offsets[2 * i + 1] = dmin * mn[j];
        }
      }
      break;
    }
    case WType::Q6_K: {
      int8_t signed_levels[kQKK];
      for (int64_t s = 0; s < cols / kQKK; ++s) {
        const auto& b = static_cast<const BlockQ6_K*>(row)[s];
        reference::unpack_q6_k(b, signed_levels);
        for (int l = 0; l < kQKK; ++l) levels[l] = static_cast<uint8_t>(signed_levels[l] + 32);
        const float d = f16_to_f32(b.d);
        for (int j = 0; j < 8; ++j) store_block(load(32 * j), load(32 * j + 16), 8 * s + j, q);
        for (int h = 0; h < 16; ++h) {
          scales[16 * s + h] = d * b.scales[h];
          offsets[16 * s + h] = 32 * d * b.scales[h];
        }
      }
      break;
    }
    default: break;
  }
}

// 16-row x 16-token tiles. Each token is quantized (vnni::pack_activation, into a row buffer per
// thread) and written straight into the layout the micro-kernels read: for each group of K, group / 4
// rows of (16 tokens x 4 consecutive levels), with its scale per block and its sum per group beside
// it. Tokens past the end are zeros, and their results are dropped.
void gemm_q_tiled(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch,
                  bool amx) {
  // Q8_0 and Q4_0 levels are symmetric around 128 and 8: shifted back to signed bytes, AMX multiplies
  // them by the signed activations directly (tdpbssd) with no offset term. VNNI has only unsigned x
  // signed (vpdpbusd), so it keeps the offset.
  // Interleaved Q4_0 rows are taken apart again, a row at a time, and unpacked as Q4_0.
  const WType row_type = w.type == WType::Q4_0x8 ? WType::Q4_0 : w.type;
  const uint8_t centre = !amx ? 0 : row_type == WType::Q8_0 ? 128 : row_type == WType::Q4_0 ? 8 : 0;
  // Every type but Q6_K has one scale and offset per 32-element block (unpack_row repeats it).
  const int group = w.type == WType::Q6_K ? 16 : 32;
  const int64_t blocks = w.cols / 32, groups = w.cols / group, token_tiles = (n_tokens + 15) / 16;
  const auto nb = static_cast<size_t>(blocks);
  const auto tiles = static_cast<size_t>(token_tiles);
  // Scratch: [token tile] levels (cols x 16 bytes), then [token tile][block][16] scales, then
  // [token tile][group][16] sums.
  const size_t tile_bytes = (tiles * nb * 32 * 16 + 63) / 64 * 64;
  const size_t total = tile_bytes + tiles * 16 * (nb + static_cast<size_t>(groups)) * sizeof(float);
  if (scratch.size() < total) scratch.resize(total);
  auto* x_tiles = reinterpret_cast<int8_t*>(scratch.data());
  auto* dx_tiles = reinterpret_cast<float*>(scratch.data() + tile_bytes);
  float* sum_tiles = dx_tiles + tiles * nb * 16;
#pragma omp parallel num_threads(n_threads) if (n_threads > 1 && token_tiles > 1)
  {
    std::vector<int8_t> q(16 * nb * 32);  // the tile's 16 tokens' levels, one row each
    std::vector<float> d(nb), half_sums(nb * 2);
#pragma omp for schedule(static)
    for (int64_t j = 0; j < token_tiles; ++j) {
      for (int64_t n = 0; n < 16; ++n) {
        const int64_t t = 16 * j + n;
        int8_t* levels = &q[static_cast<size_t>(n) * nb * 32];
        if (t < n_tokens) {
          vnni::pack_activation(x + t * w.cols, blocks, levels, d.data(), half_sums.data());
        } else {
          std::fill(levels, levels + nb * 32, 0);
          std::fill(d.begin(), d.end(), 0.0f);
          std::fill(half_sums.begin(), half_sums.end(), 0.0f);
        }
        for (int64_t b = 0; b < blocks; ++b) dx_tiles[static_cast<size_t>((j * blocks + b) * 16 + n)] = d[static_cast<size_t>(b)];
        if (!centre)  // the sums serve only the offset term, which centred levels do not have
          for (int64_t g = 0; g < groups; ++g)
            sum_tiles[static_cast<size_t>((j * groups + g) * 16 + n)] =
                group == 16 ? half_sums[static_cast<size_t>(g)] : half_sums[static_cast<size_t>(2 * g)] + half_sums[static_cast<size_t>(2 * g + 1)];
      }
      // [group][group / 4][16 tokens][4] is, whatever the group, [unit of 4 levels][16 tokens][4]: the
      // transpose of the tokens' rows of units, done 4 tokens x 4 units at a time.
      int8_t* to = x_tiles + static_cast<size_t>(j * w.cols * 16);
      for (int64_t u = 0; u < w.cols / 4; u += 4)
        for (int64_t n = 0; n < 16; n += 4) {
          __m128 r[4];
          for (int i = 0; i < 4; ++i) r[i] = _mm_loadu_ps(reinterpret_cast<const float*>(&q[static_cast<size_t>((n + i) * w.cols + 4 * u)]));
          _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]);
          for (int i = 0; i < 4; ++i) _mm_storeu_ps(reinterpret_cast<float*>(to + (u + i) * 64 + n * 4), r[i]);
        }
    }
  }
  const int64_t row_tiles = (w.rows + 15) / 16;
#pragma omp parallel num_threads(n_threads) if (n_threads > 1)
  {
    if (amx) amx::configure(group);  // tile configuration is per thread
    // The 16 rows' levels as [group][16 rows][group] (each weight tile contiguous), their scales and
    // offsets as [16 rows][one per 16 elements]. Rows past the end of the matrix keep what they held
    // (zeros at first): their results are dropped.
    std::vector<uint8_t> tiled(16 * nb * 32);
    std::vector<float> scales(16 * nb * 2), offsets(16 * nb * 2);
    std::vector<BlockQ4_0> row(w.type == WType::Q4_0x8 ? nb : 0);
    alignas(64) float tile[16 * 16];
#pragma omp for schedule(dynamic, 1)
    for (int64_t rt = 0; rt < row_tiles; ++rt) {
      const int64_t r0 = rt * 16, rows = std::min<int64_t>(16, w.rows - r0);
      for (int64_t m = 0; m < rows; ++m) {
        const void* levels = w.row(r0 + m);
        if (!row.empty()) {
          deinterleaved_row(w, r0 + m, row.data());
          levels = row.data();
        }
        unpack_row(row_type, levels, w.cols,
                   {&tiled[static_cast<size_t>(m * group)], group, static_cast<size_t>(16 * group), centre},
                   &scales[static_cast<size_t>(m) * nb * 2], &offsets[static_cast<size_t>(m) * nb * 2]);
      }
      for (int64_t j = 0; j < token_tiles; ++j) {
        const TileOperands o{.group = group, .groups = groups, .levels = tiled.data(),
                             .scales = scales.data(), .offsets = centre ? nullptr : offsets.data(),
                             .x_tiles = x_tiles + static_cast<size_t>(j * w.cols * 16),
                             .dx = dx_tiles + static_cast<size_t>(j * blocks) * 16,
                             .x_sums = sum_tiles + static_cast<size_t>(j * groups) * 16};
        amx ? amx::tile_16x16(o, tile) : vnni::tile_16x16(o, tile);
        const int64_t tokens = std::min<int64_t>(16, n_tokens - 16 * j);
        float* to = y + 16 * j * w.rows + r0;
        if (tokens == 16 && rows == 16) {  // the tile transposed, 4 rows x 4 tokens at a time
          for (int64_t r = 0; r < 16; r += 4)
            for (int64_t n = 0; n < 16; n += 4) {
              __m128 v[4];
              for (int i = 0; i < 4; ++i) v[i] = _mm_load_ps(tile + (r + i) * 16 + n);
              _MM_TRANSPOSE4_PS(v[0], v[1], v[2], v[3]);
              for (int i = 0; i < 4; ++i) _mm_storeu_ps(to + (n + i) * w.rows + r, v[i]);
            }
        } else {
          for (int64_t n = 0; n < tokens; ++n)
            for (int64_t r = 0; r < rows; ++r) to[n * w.rows + r] = tile[r * 16 + n];
        }
      }
    }
    if (amx) amx::release();
  }
}

}  // namespace

bool gemm_kernel_available(GemmKernel k) {
  const CpuFeatures& cpu = cpu_features();
  const bool vnni = cpu.avx512vnni && cpu.avx512vl && cpu.avx2 && cpu.fma;
  return k == GemmKernel::Amx ? vnni && cpu.amx_int8 : vnni;
}

bool gemm_q_available(WType t) {
  const bool quantized = t == WType::Q8_0 || t == WType::Q4_0 || t == WType::Q4_0x8 || t == WType::Q4_K ||
                         t == WType::Q5_K || t == WType::Q6_K;
  return quantized && gemm_kernel_available(GemmKernel::Vnni);
}

void pack_activation(const float* x, int64_t blocks, int8_t* q, float* d, float* half_sums) {
  for (int64_t i = 0; i < blocks; ++i) {
    const float* xb = x + 32 * i;
    float amax = 0;
    for (int l = 0; l < 32; ++l) amax = std::max(amax, std::fabs(xb[l]));
    d[i] = amax / 127;
    const float id = amax > 0 ? 127 / amax : 0;
    int sums[2] = {0, 0};
    for (int l = 0; l < 32; ++l) sums[l / 16] += (q[32 * i + l] = static_cast<int8_t>(std::nearbyint(xb[l] * id)));
    half_sums[2 * i] = d[i] * static_cast<float>(sums[0]);
    half_sums[2 * i + 1] = d[i] * static_cast<float>(sums[1]);
  }
}

void gemm_q(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch,
            GemmKernel kernel) {
  gemm_q_tiled(w, x, n_tokens, y, n_threads, scratch,
               kernel == GemmKernel::Amx || (kernel == GemmKernel::Auto && gemm_kernel_available(GemmKernel::Amx)));
}

}  // namespace longqa::kernels
