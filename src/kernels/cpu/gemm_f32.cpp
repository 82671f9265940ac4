// The run-time gate of gemm_f32 (compiled for any x86-64; the kernel itself is in gemm_f32_avx512.cpp).
#include "kernels/cpu/gemm_f32.h"

#include <stdexcept>

#include "kernels/cpu/cpu_features.h"

namespace longqa::kernels {

bool gemm_f32_available(const MatrixView& w) {
  return (w.type == WType::F32 || w.type == WType::F16 || w.type == WType::BF16) && cpu_features().avx512f;
}

void gemm_f32(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch) {
  if (!gemm_f32_available(w)) throw std::invalid_argument("gemm_f32: needs F32, F16 or BF16 weights and AVX-512F");
  avx512::gemm_f32(w, x, n_tokens, y, n_threads, scratch);
}

}  // namespace longqa::kernels
