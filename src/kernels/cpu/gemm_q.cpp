#include "kernels/cpu/gemm_q.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/quant.h"
#include "util/fp16.h"

namespace longqa::kernels {
namespace {

// One weight row as levels u in 0..255 with w = scale_h * u - offset_h per 16-element half h.
void unpack_row(WType t, const void* row, int64_t cols, uint8_t* q, float* scales, float* offsets) {
  const int64_t blocks = cols / 32;
  switch (t) {
    case WType::Q8_0: {
      const auto* b = static_cast<const BlockQ8_0*>(row);
      for (int64_t i = 0; i < blocks; ++i) {
        const float d = f16_to_f32(b[i].d);
        for (int l = 0; l < 32; ++l) q[32 * i + l] = static_cast<uint8_t>(b[i].qs[l] + 128);
        scales[2 * i] = scales[2 * i + 1] = d;
        offsets[2 * i] = offsets[2 * i + 1] = 128 * d;
      }
      break;
    }
    case WType::Q4_0: {
      const auto* b = static_cast<const BlockQ4_0*>(row);
      for (int64_t i = 0; i < blocks; ++i) {
        const float d = f16_to_f32(b[i].d);
        for (int l = 0; l < 16; ++l) {
          q[32 * i + l] = b[i].qs[l] & 0xF;
          q[32 * i + l + 16] = b[i].qs[l] >> 4;
        }
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
          reference::unpack_q4_k(b, q + s * kQKK, sc, mn);
          d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
        } else {
          const auto& b = static_cast<const BlockQ5_K*>(row)[s];
          reference::unpack_q5_k(b, q + s * kQKK, sc, mn);
          d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
        }
        for (int j = 0; j < 8; ++j) {
          const int64_t i = 8 * s + j;
          scales[2 * i] = scales[2 * i + 1] = d * sc[j];
          offsets[2 * i] = offsets[2 * i + 1] = dmin * mn[j];
        }
      }
      break;
    }
    case WType::Q6_K: {
      int8_t levels[kQKK];
      for (int64_t s = 0; s < cols / kQKK; ++s) {
        const auto& b = static_cast<const BlockQ6_K*>(row)[s];
        reference::unpack_q6_k(b, levels);
        const float d = f16_to_f32(b.d);
        for (int l = 0; l < kQKK; ++l) q[s * kQKK + l] = static_cast<uint8_t>(levels[l] + 32);
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

// A partial tile repeats its last row, so the micro-kernel always sees `tile` rows; the copies'
// results are dropped.
void pad_rows(PackedRows& p, int64_t rows, int64_t tile) {
  const auto nb = static_cast<size_t>(p.blocks);
  p.levels.resize(nb * 32 * static_cast<size_t>(tile));
  p.scales.resize(nb * 2 * static_cast<size_t>(tile));
  p.offsets.resize(nb * 2 * static_cast<size_t>(tile));
  for (int64_t r = rows; r < tile; ++r) {
    std::memcpy(&p.levels[static_cast<size_t>(r) * nb * 32], &p.levels[static_cast<size_t>(rows - 1) * nb * 32], nb * 32);
    std::memcpy(&p.scales[static_cast<size_t>(r) * nb * 2], &p.scales[static_cast<size_t>(rows - 1) * nb * 2], nb * 2 * sizeof(float));
  }
}

// The AMX path: 16-row x 16-token tiles. Each token is quantized (vnni::pack_activation, into a
// row buffer per thread) and written straight into the layout the tile multiply reads: for each
// group of K, group / 4 rows of (16 tokens x 4 consecutive levels), with its scale per block and its
// sum per group beside it. Tokens past the end are zeros, and their results are dropped.
void gemm_q_amx(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch) {
  // Q8_0 and Q4_0 levels are symmetric around 128 and 8: shifted back to signed bytes, they multiply
  // the signed activations directly (tdpbssd) with no offset term.
  const uint8_t centre = w.type == WType::Q8_0 ? 128 : w.type == WType::Q4_0 ? 8 : 0;
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
    std::vector<int8_t> q(nb * 32);
    std::vector<float> d(nb), half_sums(nb * 2);
#pragma omp for schedule(static)
    for (int64_t j = 0; j < token_tiles; ++j)
      for (int64_t n = 0; n < 16; ++n) {
        const int64_t t = 16 * j + n;
        if (t < n_tokens) {
          vnni::pack_activation(x + t * w.cols, blocks, q.data(), d.data(), half_sums.data());
        } else {
          std::fill(q.begin(), q.end(), 0);
          std::fill(d.begin(), d.end(), 0.0f);
          std::fill(half_sums.begin(), half_sums.end(), 0.0f);
        }
        int8_t* to = x_tiles + static_cast<size_t>(j * w.cols * 16 + n * 4);
        const int8_t* from = q.data();
        for (int64_t g = 0; g < groups; ++g, to += group * 16, from += group)
          for (int c = 0; c < group / 4; ++c) std::memcpy(to + c * 64, from + c * 4, 4);  // 4 consecutive levels stay together
        for (int64_t b = 0; b < blocks; ++b) dx_tiles[static_cast<size_t>((j * blocks + b) * 16 + n)] = d[static_cast<size_t>(b)];
        if (!centre)  // the sums serve only the offset term, which centred levels do not have
          for (int64_t g = 0; g < groups; ++g)
            sum_tiles[static_cast<size_t>((j * groups + g) * 16 + n)] =
                group == 16 ? half_sums[static_cast<size_t>(g)] : half_sums[static_cast<size_t>(2 * g)] + half_sums[static_cast<size_t>(2 * g + 1)];
      }
  }
  const int64_t row_tiles = (w.rows + 15) / 16;
#pragma omp parallel num_threads(n_threads) if (n_threads > 1)
  {
    amx::configure(group);  // tile configuration is per thread
    PackedRows packed;
    std::vector<uint8_t> tiled(16 * nb * 32);  // the levels as [group][16 rows][group]: each tile contiguous
    alignas(64) float tile[16 * 16];
#pragma omp for schedule(dynamic, 1)
    for (int64_t rt = 0; rt < row_tiles; ++rt) {
      const int64_t r0 = rt * 16, rows = std::min<int64_t>(16, w.rows - r0);
      unpack_rows(w, r0, rows, packed);
      if (rows < 16) pad_rows(packed, rows, 16);
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t m = 0; m < 16; ++m) {
          uint8_t* to = &tiled[static_cast<size_t>((g * 16 + m) * group)];
          const uint8_t* from = &packed.levels[static_cast<size_t>(m) * nb * 32 + static_cast<size_t>(g * group)];
          for (int l = 0; l < group; ++l) to[l] = static_cast<uint8_t>(from[l] - centre);
        }
      for (int64_t j = 0; j < token_tiles; ++j) {
        const amx::TileOperands o{.group = group, .groups = groups, .levels = tiled.data(),
                                  .scales = packed.scales.data(), .offsets = centre ? nullptr : packed.offsets.data(),
                                  .x_tiles = x_tiles + static_cast<size_t>(j * w.cols * 16),
                                  .dx = dx_tiles + static_cast<size_t>(j * blocks) * 16,
                                  .x_sums = sum_tiles + static_cast<size_t>(j * groups) * 16};
        amx::tile_16x16(o, tile);
        const int64_t tokens = std::min<int64_t>(16, n_tokens - 16 * j);
        for (int64_t n = 0; n < tokens; ++n)
          for (int64_t r = 0; r < rows; ++r) y[(16 * j + n) * w.rows + r0 + r] = tile[r * 16 + n];
      }
    }
    amx::release();
  }
}

}  // namespace

bool gemm_kernel_available(GemmKernel k) {
  const CpuFeatures& cpu = cpu_features();
  const bool vnni = cpu.avx512vnni && cpu.avx512vl && cpu.avx2 && cpu.fma;
  return k == GemmKernel::Amx ? vnni && cpu.amx_int8 : vnni;
}

bool gemm_q_available(WType t) {
  const bool quantized = t == WType::Q8_0 || t == WType::Q4_0 || t == WType::Q4_K || t == WType::Q5_K || t == WType::Q6_K;
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

void unpack_rows(const MatrixView& w, int64_t first_row, int64_t n_rows, PackedRows& out) {
  out.blocks = w.cols / 32;
  const auto b = static_cast<size_t>(out.blocks);
  out.levels.resize(static_cast<size_t>(n_rows) * b * 32);
  out.scales.resize(static_cast<size_t>(n_rows) * b * 2);
  out.offsets.resize(out.scales.size());
  for (int64_t r = 0; r < n_rows; ++r)
    unpack_row(w.type, w.row(first_row + r), w.cols, out.levels.data() + static_cast<size_t>(r) * b * 32,
               out.scales.data() + static_cast<size_t>(r) * b * 2, out.offsets.data() + static_cast<size_t>(r) * b * 2);
}

void gemm_q(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch,
            GemmKernel kernel) {
  if (kernel == GemmKernel::Amx || (kernel == GemmKernel::Auto && gemm_kernel_available(GemmKernel::Amx)))
    return gemm_q_amx(w, x, n_tokens, y, n_threads, scratch);
  const int64_t blocks = w.cols / 32;
  const size_t nb = static_cast<size_t>(blocks);
  // Activation pack in scratch: [token] int8 levels, then [token] scales, then [token] half sums.
  const size_t q_bytes = (static_cast<size_t>(n_tokens) * nb * 32 + 63) / 64 * 64, f_count = static_cast<size_t>(n_tokens) * nb * 3;
  if (scratch.size() < q_bytes + f_count * sizeof(float)) scratch.resize(q_bytes + f_count * sizeof(float));
  auto* xq = reinterpret_cast<int8_t*>(scratch.data());
  auto* xf = reinterpret_cast<float*>(scratch.data() + q_bytes);
  float* xd = xf;
  float* xs = xf + static_cast<size_t>(n_tokens) * nb;
  // gemm_q runs only where VNNI does, so its vectorised packing always can.
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1 && n_tokens >= 16)
  for (int64_t t = 0; t < n_tokens; ++t)
    vnni::pack_activation(x + t * w.cols, blocks, xq + static_cast<size_t>(t) * nb * 32, xd + static_cast<size_t>(t) * nb,
                          xs + static_cast<size_t>(t) * nb * 2);
  const DotFn dot_f32 = dot_fn(WType::F32);
  const int64_t row_tiles = (w.rows + 3) / 4;
#pragma omp parallel num_threads(n_threads) if (n_threads > 1)
  {
    PackedRows packed;
    float tile[16];
#pragma omp for schedule(dynamic, 4)
    for (int64_t rt = 0; rt < row_tiles; ++rt) {
      const int64_t r0 = rt * 4, rows = std::min<int64_t>(4, w.rows - r0);
      unpack_rows(w, r0, rows, packed);
      if (rows < 4) pad_rows(packed, rows, 4);
      for (int64_t t0 = 0; t0 < n_tokens; t0 += 4) {
        const int tokens = static_cast<int>(std::min<int64_t>(4, n_tokens - t0));
        const int8_t* xq_t[4];
        const float* xd_t[4];
        for (int t = 0; t < tokens; ++t) {
          xq_t[t] = xq + static_cast<size_t>(t0 + t) * nb * 32;
          xd_t[t] = xd + static_cast<size_t>(t0 + t) * nb;
        }
        vnni::tile_4xn(packed.levels.data(), packed.scales.data(), blocks, xq_t, xd_t, tokens, tile);
        for (int64_t r = 0; r < rows; ++r)
          for (int t = 0; t < tokens; ++t) {
            const float offset = dot_f32(packed.offsets.data() + static_cast<size_t>(r) * nb * 2,
                                         xs + static_cast<size_t>(t0 + t) * nb * 2, 2 * blocks);
            y[(t0 + t) * w.rows + r0 + r] = tile[r * 4 + t] - offset;
          }
      }
    }
  }
}

}  // namespace longqa::kernels
