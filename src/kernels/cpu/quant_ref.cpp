// Scalar references for the block formats: plain loops over unpacked integer levels, the definitions
// the AVX2 paths are tested against. Quantizers search each sub-block's scale (and offset) for the
// least squared error; any encoding they produce is a valid ggml block.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/quant.h"
#include "util/fp16.h"

namespace longqa::kernels::reference {

void unpack_q4_k(const BlockQ4_K& b, uint8_t* q, uint8_t* sc, uint8_t* mn) {
  for (int j = 0; j < 8; ++j) {
    k_scale_min(j, b.scales, sc[j], mn[j]);
    for (int l = 0; l < 32; ++l) q[j * 32 + l] = static_cast<uint8_t>((b.qs[(j / 2) * 32 + l] >> (4 * (j % 2))) & 0xF);
  }
}

void unpack_q5_k(const BlockQ5_K& b, uint8_t* q, uint8_t* sc, uint8_t* mn) {
  for (int j = 0; j < 8; ++j) {
    k_scale_min(j, b.scales, sc[j], mn[j]);
    for (int l = 0; l < 32; ++l)
      q[j * 32 + l] = static_cast<uint8_t>(((b.qs[(j / 2) * 32 + l] >> (4 * (j % 2))) & 0xF) | (((b.qh[l] >> j) & 1) << 4));
  }
}

void unpack_q6_k(const BlockQ6_K& b, int8_t* q) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t lo0 = b.ql[h * 64 + l], lo1 = b.ql[h * 64 + l + 32], hi = b.qh[h * 32 + l];
      q[h * 128 + l] = static_cast<int8_t>(((lo0 & 0xF) | ((hi & 3) << 4)) - 32);
      q[h * 128 + l + 32] = static_cast<int8_t>(((lo1 & 0xF) | (((hi >> 2) & 3) << 4)) - 32);
      q[h * 128 + l + 64] = static_cast<int8_t>(((lo0 >> 4) | (((hi >> 4) & 3) << 4)) - 32);
      q[h * 128 + l + 96] = static_cast<int8_t>(((lo1 >> 4) | (((hi >> 6) & 3) << 4)) - 32);
    }
}

namespace {

int nearest(float x) { return static_cast<int>(std::nearbyint(x)); }

// Asymmetric quantization of 32 values to levels 0..max_level as x ~ scale * q - min (min >= 0).
// Tries a range of grid spacings around (max - min) / max_level; for each, assigns levels and fits
// scale and offset by least squares; keeps the fit with the smallest squared error.
void fit_affine(const float* x, int max_level, float& scale, float& min) {
  const float lo = std::min(*std::min_element(x, x + 32), 0.0f), hi = *std::max_element(x, x + 32);
  scale = (hi - lo) / static_cast<float>(max_level);
  min = -lo;
  if (scale <= 0) return;
  auto error = [&](float s, float m) {
    double e = 0;
    for (int l = 0; l < 32; ++l) {
      const int q = std::clamp(nearest((x[l] + m) / s), 0, max_level);
      const double d = s * q - m - x[l];
      e += d * d;
    }
    return e;
  };
  double best = error(scale, min);
  for (int step = -10; step <= 10; ++step) {
    const float trial = (hi - lo) / (static_cast<float>(max_level) + 0.1f * static_cast<float>(step));
    double sq = 0, sqq = 0, sx = 0, sxq = 0;
    for (int l = 0; l < 32; ++l) {
      const int q = std::clamp(nearest((x[l] - lo) / trial), 0, max_level);
      sq += q;
      sqq += q * q;
      sx += x[l];
      sxq += static_cast<double>(x[l]) * q;
    }
    const double det = 32 * sqq - sq * sq;
    if (det <= 0) continue;
    const double s_fit = (32 * sxq - sq * sx) / det;
    const double b_fit = std::min((sx - s_fit * sq) / 32, 0.0);  // x ~ s q + b, with b <= 0
    if (s_fit <= 0) continue;
    const double e = error(static_cast<float>(s_fit), static_cast<float>(-b_fit));
    if (e < best) {
      best = e;
      scale = static_cast<float>(s_fit);
      min = static_cast<float>(-b_fit);
    }
  }
}

// Packs 6-bit scales and mins of 8 sub-blocks into the 12-byte K-quant field.
void pack_scales(const uint8_t* ls, const uint8_t* lm, uint8_t* out) {
  std::memset(out, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      out[j] = ls[j];
      out[j + 4] = lm[j];
    } else {
      out[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      out[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
      out[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
    }
  }
}

// The shared part of Q4_K and Q5_K: per-sub-block affine fits, 6-bit scales, then levels.
template <typename Block>
void quantize_k_affine(const float* x, Block& b, int max_level, uint8_t* levels) {
  float scale[8], min[8];
  for (int j = 0; j < 8; ++j) fit_affine(x + 32 * j, max_level, scale[j], min[j]);
  const float max_scale = *std::max_element(scale, scale + 8), max_min = *std::max_element(min, min + 8);
  b.d = f32_to_f16(max_scale / 63);
  b.dmin = f32_to_f16(max_min / 63);
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = static_cast<uint8_t>(d > 0 ? std::clamp(nearest(scale[j] / d), 0, 63) : 0);
    lm[j] = static_cast<uint8_t>(dmin > 0 ? std::clamp(nearest(min[j] / dmin), 0, 63) : 0);
    const float s = d * ls[j], m = dmin * lm[j];
    for (int l = 0; l < 32; ++l)
      levels[32 * j + l] = static_cast<uint8_t>(s > 0 ? std::clamp(nearest((x[32 * j + l] + m) / s), 0, max_level) : 0);
  }
  pack_scales(ls, lm, b.scales);
}

// The value of largest magnitude, with its sign.
float signed_absmax(const float* x, int n) {
  float best = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > std::fabs(best)) best = x[i];
  return best;
}

}  // namespace

void dequantize_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b)
    for (int j = 0; j < kQK; ++j) y[b * kQK + j] = f16_to_f32(x[b].d) * x[b].qs[j];
}

void dequantize_q4_0(const BlockQ4_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float d = f16_to_f32(x[b].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[b * kQK + j] = d * ((x[b].qs[j] & 0xF) - 8);
      y[b * kQK + j + 16] = d * ((x[b].qs[j] >> 4) - 8);
    }
  }
}

namespace {
// K4/K5 blocks decode alike: x = d * scale_j * q - dmin * min_j in sub-block j.
template <typename Block, typename Unpack>
void dequantize_k_affine(const Block* x, float* y, int64_t n, Unpack unpack) {
  uint8_t q[kQKK], sc[8], mn[8];
  for (int64_t b = 0; b < n / kQKK; ++b) {
    unpack(x[b], q, sc, mn);
    const float d = f16_to_f32(x[b].d), dmin = f16_to_f32(x[b].dmin);
    for (int i = 0; i < kQKK; ++i) y[b * kQKK + i] = d * sc[i / 32] * q[i] - dmin * mn[i / 32];
  }
}
}  // namespace

void dequantize_q4_k(const BlockQ4_K* x, float* y, int64_t n) { dequantize_k_affine(x, y, n, unpack_q4_k); }
void dequantize_q5_k(const BlockQ5_K* x, float* y, int64_t n) { dequantize_k_affine(x, y, n, unpack_q5_k); }

void dequantize_q6_k(const BlockQ6_K* x, float* y, int64_t n) {
  int8_t q[kQKK];
  for (int64_t b = 0; b < n / kQKK; ++b) {
    unpack_q6_k(x[b], q);
    const float d = f16_to_f32(x[b].d);
    for (int i = 0; i < kQKK; ++i) y[b * kQKK + i] = d * x[b].scales[i / 16] * q[i];
  }
}

void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127, id = d > 0 ? 1 / d : 0;
    y[b].d = f32_to_f16(d);
    for (int j = 0; j < kQK; ++j) y[b].qs[j] = static_cast<int8_t>(nearest(xb[j] * id));
  }
}

void quantize_q4_0(const float* x, BlockQ4_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    const float d = signed_absmax(xb, kQK) / -8, id = d != 0 ? 1 / d : 0;  // the extreme maps to level 0
    y[b].d = f32_to_f16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = std::clamp(static_cast<int>(xb[j] * id + 8.5f), 0, 15);
      const int hi = std::clamp(static_cast<int>(xb[j + 16] * id + 8.5f), 0, 15);
      y[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void quantize_q4_k(const float* x, BlockQ4_K* y, int64_t n) {
  uint8_t q[kQKK];
  for (int64_t b = 0; b < n / kQKK; ++b) {
    quantize_k_affine(x + b * kQKK, y[b], 15, q);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) y[b].qs[c * 32 + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
  }
}

void quantize_q5_k(const float* x, BlockQ5_K* y, int64_t n) {
  uint8_t q[kQKK];
  for (int64_t b = 0; b < n / kQKK; ++b) {
    quantize_k_affine(x + b * kQKK, y[b], 31, q);
    std::memset(y[b].qh, 0, sizeof y[b].qh);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        const uint8_t lo = q[64 * c + l], hi = q[64 * c + 32 + l];
        y[b].qs[c * 32 + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        y[b].qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
  }
}

void quantize_q6_k(const float* x, BlockQ6_K* y, int64_t n) {
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const float* xb = x + b * kQKK;
    float scale[16];
    for (int g = 0; g < 16; ++g) scale[g] = signed_absmax(xb + 16 * g, 16) / -32;
    const float big = signed_absmax(scale, 16);
    const float d = big / -128;
    y[b].d = f32_to_f16(d);
    const float df = f16_to_f32(y[b].d);
    int8_t q[kQKK];
    for (int g = 0; g < 16; ++g) {
      const int sc = df != 0 ? std::clamp(nearest(scale[g] / df), -128, 127) : 0;
      y[b].scales[g] = static_cast<int8_t>(sc);
      const float s = df * sc;
      for (int l = 0; l < 16; ++l) q[16 * g + l] = static_cast<int8_t>(s != 0 ? std::clamp(nearest(xb[16 * g + l] / s), -32, 31) : 0);
    }
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const int q0 = q[h * 128 + l] + 32, q1 = q[h * 128 + l + 32] + 32, q2 = q[h * 128 + l + 64] + 32,
                  q3 = q[h * 128 + l + 96] + 32;
        y[b].ql[h * 64 + l] = static_cast<uint8_t>((q0 & 0xF) | ((q2 & 0xF) << 4));
        y[b].ql[h * 64 + l + 32] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
        y[b].qh[h * 32 + l] = static_cast<uint8_t>((q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6));
      }
  }
}

void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t n) {
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const float* xb = x + b * kQKK;
    float amax = 0;
    for (int i = 0; i < kQKK; ++i) amax = std::max(amax, std::fabs(xb[i]));
    y[b].d = amax / 127;
    const float id = amax > 0 ? 127 / amax : 0;
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += (y[b].qs[16 * g + l] = static_cast<int8_t>(nearest(xb[16 * g + l] * id)));
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
  }
}

float dot_q8_0(const void* w, const void* x, int64_t n) {
  const auto* a = static_cast<const BlockQ8_0*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  float s = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int sum = 0;
    for (int j = 0; j < kQK; ++j) sum += a[i].qs[j] * b[i].qs[j];
    s += f16_to_f32(a[i].d) * f16_to_f32(b[i].d) * static_cast<float>(sum);
  }
  return s;
}

float dot_q4_0(const void* w, const void* x, int64_t n) {
  const auto* a = static_cast<const BlockQ4_0*>(w);
  const auto* b = static_cast<const BlockQ8_0*>(x);
  float s = 0;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int sum = 0;
    for (int j = 0; j < kQK / 2; ++j)
      sum += ((a[i].qs[j] & 0xF) - 8) * b[i].qs[j] + ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + 16];
    s += f16_to_f32(a[i].d) * f16_to_f32(b[i].d) * static_cast<float>(sum);
  }
  return s;
}

void interleave_q4_0(const void* rows, size_t row_stride, int64_t blocks, BlockQ4_0x8* out) {
  for (int r = 0; r < 8; ++r) {
    const auto* row =
        reinterpret_cast<const BlockQ4_0*>(static_cast<const uint8_t*>(rows) + static_cast<size_t>(r) * row_stride);
    for (int64_t i = 0; i < blocks; ++i) {
      out[i].d[r] = row[i].d;
      for (int j = 0; j < 4; ++j) std::memcpy(out[i].qs[j][r], row[i].qs + 4 * j, 4);
    }
  }
}

void deinterleave_q4_0(const BlockQ4_0x8* in, int64_t blocks, int r, BlockQ4_0* out) {
  for (int64_t i = 0; i < blocks; ++i) {
    out[i].d = in[i].d[r];
    for (int j = 0; j < 4; ++j) std::memcpy(out[i].qs + 4 * j, in[i].qs[j][r], 4);
  }
}

void dot_q4_0x8(const void* w, const void* x, int64_t n, float* y) {
  const auto* a = static_cast<const BlockQ4_0x8*>(w);
  BlockQ4_0 row[1];
  for (int r = 0; r < 8; ++r) {
    float s = 0;
    for (int64_t i = 0; i < n / kQK; ++i) {
      deinterleave_q4_0(a + i, 1, r, row);
      s += dot_q4_0(row, static_cast<const BlockQ8_0*>(x) + i, kQK);
    }
    y[r] = s;
  }
}

namespace {
// K4/K5 share the affine form: d * sum_j sc_j * (q . x)_j - dmin * sum_j m_j * (sum of x quants)_j.
template <typename Block, typename Unpack>
float dot_k_affine(const void* w, const void* x, int64_t n, Unpack unpack) {
  const auto* a = static_cast<const Block*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  uint8_t q[kQKK], sc[8], mn[8];
  float s = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    unpack(a[i], q, sc, mn);
    int64_t sum = 0, sum_min = 0;
    for (int j = 0; j < 8; ++j) {
      int sub = 0;
      for (int l = 0; l < 32; ++l) sub += q[32 * j + l] * b[i].qs[32 * j + l];
      sum += static_cast<int64_t>(sc[j]) * sub;
      sum_min += static_cast<int64_t>(mn[j]) * (b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
    }
    s += b[i].d * (f16_to_f32(a[i].d) * static_cast<float>(sum) - f16_to_f32(a[i].dmin) * static_cast<float>(sum_min));
  }
  return s;
}
}  // namespace

float dot_q4_k(const void* w, const void* x, int64_t n) { return dot_k_affine<BlockQ4_K>(w, x, n, unpack_q4_k); }
float dot_q5_k(const void* w, const void* x, int64_t n) { return dot_k_affine<BlockQ5_K>(w, x, n, unpack_q5_k); }

float dot_q6_k(const void* w, const void* x, int64_t n) {
  const auto* a = static_cast<const BlockQ6_K*>(w);
  const auto* b = static_cast<const BlockQ8_K*>(x);
  int8_t q[kQKK];
  float s = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    unpack_q6_k(a[i], q);
    int64_t sum = 0;
    for (int g = 0; g < 16; ++g) {
      int sub = 0;
      for (int l = 0; l < 16; ++l) sub += q[16 * g + l] * b[i].qs[16 * g + l];
      sum += static_cast<int64_t>(a[i].scales[g]) * sub;
    }
    s += b[i].d * f16_to_f32(a[i].d) * static_cast<float>(sum);
  }
  return s;
}

}  // namespace longqa::kernels::reference
