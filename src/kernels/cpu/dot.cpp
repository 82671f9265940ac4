#include "kernels/cpu/dot.h"

#include <cstring>

#include "kernels/cpu/cpu_features.h"
#include "util/fp16.h"

namespace longqa::kernels {

const char* wtype_name(WType t) {
  switch (t) {
    case WType::F32: return "F32";
    case WType::F16: return "F16";
    case WType::BF16: return "BF16";
  }
  return "?";
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

float dot_f32(const void* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += element<float>(w, i) * x[i];
  return s;
}

float dot_f16(const void* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += f16_to_f32(element<uint16_t>(w, i)) * x[i];
  return s;
}

float dot_bf16(const void* w, const float* x, int64_t n) {
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
  }
  return nullptr;
}

DotFn dot_fn(WType t) {
  const CpuFeatures& cpu = cpu_features();
  if (cpu.avx2 && cpu.fma && cpu.f16c) {
    switch (t) {
      case WType::F32: return avx2::dot_f32;
      case WType::F16: return avx2::dot_f16;
      case WType::BF16: return avx2::dot_bf16;
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
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(element<uint16_t>(src, i));
      break;
    case WType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(element<uint16_t>(src, i));
      break;
  }
}

}  // namespace longqa::kernels
