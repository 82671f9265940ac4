// The run-time gate of gemm_bf16 (compiled for any x86-64; the kernel itself is in gemm_bf16_amx.cpp).
#include "kernels/cpu/gemm_bf16.h"

#include <stdexcept>

#include "kernels/cpu/cpu_features.h"

namespace longqa::kernels {

bool gemm_bf16_available(const MatrixView& w) {
  return (w.type == WType::F16 || w.type == WType::BF16) && w.cols % 32 == 0 && cpu_features().amx_bf16;
}

void gemm_bf16(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch) {
  if (!gemm_bf16_available(w)) throw std::invalid_argument("gemm_bf16: needs F16/BF16 weights with rows of 32k elements and AMX-BF16");
  amx::gemm_bf16(w, x, n_tokens, y, n_threads, scratch);
}

}  // namespace longqa::kernels
