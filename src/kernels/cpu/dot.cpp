#include "kernels/cpu/dot.h"

#include <cstring>
#include <stdexcept>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/quant.h"
#include "util/fp16.h"

namespace longqa::kernels {

const WTypeInfo& wtype_info(WType t) {
  static const WTypeInfo info[] = {
      {"F32", 1, 4, ActType::F32},
      {"F16", 1, 2, ActType::F32},
      {"BF16", 1, 2, ActType::F32},
      {"Q8_0", kQK, sizeof(BlockQ8_0), ActType::Q8_0},
      {"Q4_0", kQK, sizeof(BlockQ4_0), ActType::Q8_0},
      {"Q4_K", kQKK, sizeof(BlockQ4_K), ActType::Q8_K},
      {"Q5_K", kQKK, sizeof(BlockQ5_K), ActType::Q8_K},
      {"Q6_K", kQKK, sizeof(BlockQ6_K), ActType::Q8_K},
      {"Q4_0x8", kQK, sizeof(BlockQ4_0), ActType::Q8_0, 8},
  };
  return info[static_cast<size_t>(t)];
}

size_t row_bytes(WType t, int64_t n) {
  const WTypeInfo& i = wtype_info(t);
  return static_cast<size_t>(n / i.block) * i.block_bytes;
}

size_t act_row_bytes(WType t, int64_t n) {
  switch (wtype_info(t).act) {
    case ActType::F32: return 0;
    case ActType::Q8_0: return static_cast<size_t>(n / kQK) * (sizeof(BlockQ8_0) + 2 * sizeof(float));
    case ActType::Q8_K: return static_cast<size_t>(n / kQKK) * sizeof(BlockQ8_K);
  }
  return 0;
}

void quantize_activation(WType t, const float* x, void* out, int64_t n) {
  switch (wtype_info(t).act) {
    case ActType::F32: break;
    case ActType::Q8_0: {
      auto* blocks = static_cast<BlockQ8_0*>(out);
      reference::quantize_q8_0(x, blocks, n);
      // The trailer (see dot.h): per block its scale as a float and its scaled sum.
      const int64_t nb = n / kQK;
      auto* trailer = reinterpret_cast<uint8_t*>(blocks + nb);
      for (int64_t i = 0; i < nb; ++i) {
        int sum = 0;
        for (int8_t q : blocks[i].qs) sum += q;
        const float d = f16_to_f32(blocks[i].d), ds = d * static_cast<float>(sum);
        std::memcpy(trailer + static_cast<size_t>(i) * sizeof(float), &d, sizeof(float));
        std::memcpy(trailer + static_cast<size_t>(nb + i) * sizeof(float), &ds, sizeof(float));
      }
      break;
    }
    case ActType::Q8_K: reference::quantize_q8_k(x, static_cast<BlockQ8_K*>(out), n); break;
  }
}

namespace {
// Weights mapped from safetensors files may sit at any byte offset: read elements with memcpy, which
// compiles to a plain load, instead of dereferencing a possibly misaligned pointer.
template <typename T>
T element(const void* base, int64_t i) {
  T v;
  std::memcpy(&v, static_cast<const uint8_t*>(base) + static_cast<size_t>(i) * sizeof(T), sizeof(T));
  return v;
}
}  // namespace

namespace reference {

float dot_f32(const void* w, const void* xv, int64_t n) {
  const auto* x = static_cast<const float*>(xv);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += element<float>(w, i) * x[i];
  return s;
}

float dot_f16(const void* w, const void* xv, int64_t n) {
  const auto* x = static_cast<const float*>(xv);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += f16_to_f32(element<uint16_t>(w, i)) * x[i];
  return s;
}

float dot_bf16(const void* w, const void* xv, int64_t n) {
  const auto* x = static_cast<const float*>(xv);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += bf16_to_f32(element<uint16_t>(w, i)) * x[i];
  return s;
}

}  // namespace reference

DotFn reference_dot_fn(WType t) {
  switch (t) {
    case WType::F32: return reference::dot_f32;
    case WType::F16: return reference::dot_f16;
    case WType::BF16: return reference::dot_bf16;
    case WType::Q8_0: return reference::dot_q8_0;
    case WType::Q4_0: return reference::dot_q4_0;
    case WType::Q4_K: return reference::dot_q4_k;
    case WType::Q5_K: return reference::dot_q5_k;
    case WType::Q6_K: return reference::dot_q6_k;
    case WType::Q4_0x8:
      return nullptr;
  }
  return nullptr;
}

namespace {
bool has_avx2_kernels() {
  const CpuFeatures& cpu = cpu_features();
  return cpu.avx2 && cpu.fma && cpu.f16c;
}
bool has_vnni_kernels() {
  const CpuFeatures& cpu = cpu_features();
  return has_avx2_kernels() && cpu.avx512vl && cpu.avx512bw && cpu.avx512vnni;
}
}  // namespace

GroupDotFn reference_group_dot_fn(WType t) { return t == WType::Q4_0x8 ? reference::dot_q4_0x8 : nullptr; }

GroupDotFn group_dot_fn(WType t) {
  if (t != WType::Q4_0x8) return nullptr;
  return has_vnni_kernels() ? vnni::dot_q4_0x8 : has_avx2_kernels() ? avx2::dot_q4_0x8 : reference::dot_q4_0x8;
}

Dot4Fn dot4_fn(WType t) {
  if (!has_avx2_kernels()) return nullptr;
  return t == WType::F32    ? avx2::dot4_f32
         : t == WType::F16  ? avx2::dot4_f16
         : t == WType::BF16 ? avx2::dot4_bf16
                            : nullptr;
}

WType decode_layout(WType t, int64_t rows) {
  return t == WType::Q4_0 && rows % 8 == 0 && has_avx2_kernels() ? WType::Q4_0x8 : t;
}

DotFn dot_fn(WType t) {
  if (has_vnni_kernels()) {
    if (t == WType::Q8_0) return vnni::dot_q8_0;
    if (t == WType::Q4_0) return vnni::dot_q4_0;
    if (t == WType::Q4_K) return vnni::dot_q4_k;
    if (t == WType::Q5_K) return vnni::dot_q5_k;
    if (t == WType::Q6_K) return vnni::dot_q6_k;
  }
  if (has_avx2_kernels()) {
    switch (t) {
      case WType::F32: return avx2::dot_f32;
      case WType::F16: return avx2::dot_f16;
      case WType::BF16: return avx2::dot_bf16;
      case WType::Q8_0: return avx2::dot_q8_0;
      case WType::Q4_0: return avx2::dot_q4_0;
      case WType::Q4_K: return avx2::dot_q4_k;
      case WType::Q5_K: return avx2::dot_q5_k;
      case WType::Q6_K: return avx2::dot_q6_k;
      case WType::Q4_0x8:
        return nullptr;
    }
  }
  return reference_dot_fn(t);
}

void to_f32(WType t, const void* src, float* dst, int64_t n) {
  switch (t) {
    case WType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case WType::F16:
      if (cpu_features().avx2 && cpu_features().f16c) return avx2::f16_to_f32_row(src, dst, n);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(element<uint16_t>(src, i));
      break;
    case WType::BF16:
      if (cpu_features().avx2) return avx2::bf16_to_f32_row(src, dst, n);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(element<uint16_t>(src, i));
      break;
    // Quantized rows are byte arrays of packed structs: no alignment is needed to read them.
    case WType::Q8_0: reference::dequantize_q8_0(static_cast<const BlockQ8_0*>(src), dst, n); break;
    case WType::Q4_0: reference::dequantize_q4_0(static_cast<const BlockQ4_0*>(src), dst, n); break;
    case WType::Q4_K: reference::dequantize_q4_k(static_cast<const BlockQ4_K*>(src), dst, n); break;
    case WType::Q5_K: reference::dequantize_q5_k(static_cast<const BlockQ5_K*>(src), dst, n); break;
    case WType::Q6_K: reference::dequantize_q6_k(static_cast<const BlockQ6_K*>(src), dst, n); break;
    case WType::Q4_0x8:
      throw std::logic_error("to_f32: Q4_0x8 rows are interleaved; convert the matrix");
  }
}

}  // namespace longqa::kernels

namespace longqa::kernels {

void from_f32(WType t, const float* src, void* dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  switch (t) {
    case WType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); break;
    case WType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(src[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      break;
    case WType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(src[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      break;
    case WType::Q8_0: reference::quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), n); break;
    case WType::Q4_0: reference::quantize_q4_0(src, static_cast<BlockQ4_0*>(dst), n); break;
    case WType::Q4_K: reference::quantize_q4_k(src, static_cast<BlockQ4_K*>(dst), n); break;
    case WType::Q5_K: reference::quantize_q5_k(src, static_cast<BlockQ5_K*>(dst), n); break;
    case WType::Q6_K: reference::quantize_q6_k(src, static_cast<BlockQ6_K*>(dst), n); break;
    case WType::Q4_0x8:
      throw std::logic_error("from_f32: Q4_0x8 is made by interleaving Q4_0 rows, not by encoding");
  }
}

void axpy(float a, const float* x, float* y, int64_t n) {
  // Attention calls this once per key and head: the CPU check is made once (2% of prefill when
  // cpu_features() was asked on every call).
  static const bool fast = cpu_features().avx2 && cpu_features().fma;
  if (fast) return avx2::axpy(a, x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace longqa::kernels
