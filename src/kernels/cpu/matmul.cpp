#include "kernels/cpu/matmul.h"

#include <algorithm>

#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/gemm_q.h"

namespace longqa::kernels {
namespace {

// Activation rows in the format the weights' dot product takes; float types use x as it is.
const uint8_t* prepare_activations(const MatrixView& w, const float* x, int64_t n_tokens, std::vector<uint8_t>& scratch,
                                   size_t& stride) {
  stride = act_row_bytes(w.type, w.cols);
  if (stride == 0) {
    stride = static_cast<size_t>(w.cols) * sizeof(float);
    return reinterpret_cast<const uint8_t*>(x);
  }
  if (scratch.size() < stride * static_cast<size_t>(n_tokens)) scratch.resize(stride * static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) quantize_activation(w.type, x + t * w.cols, scratch.data() + static_cast<size_t>(t) * stride, w.cols);
  return scratch.data();
}

}  // namespace

void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch) {
  // Batches of tokens take the tiled products where the CPU has them (int8 for quantized weights,
  // BF16 for F16/BF16): weights are unpacked once per call and reused across tokens.
  if (n_tokens >= 4 && gemm_q_available(w.type)) return gemm_q(w, x, n_tokens, y, n_threads, scratch);
  if (n_tokens >= 4 && gemm_bf16_available(w)) return gemm_bf16(w, x, n_tokens, y, n_threads, scratch);
  const DotFn dot = dot_fn(w.type);
  size_t stride = 0;
  const uint8_t* act = prepare_activations(w, x, n_tokens, scratch, stride);
  const auto* weights = static_cast<const uint8_t*>(w.data);
  const size_t row_stride = w.row_stride();
  // Blocks of rows small enough that a block stays in L2 while every token passes over it.
  constexpr int64_t kRowBlock = 16;
  const int64_t n_blocks = (w.rows + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1 && w.rows * w.cols * n_tokens > 32768)
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t r_end = std::min(w.rows, (b + 1) * kRowBlock);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const uint8_t* xt = act + static_cast<size_t>(t) * stride;
      float* yt = y + t * w.rows;
      for (int64_t r = b * kRowBlock; r < r_end; ++r) yt[r] = dot(weights + static_cast<size_t>(r) * row_stride, xt, w.cols);
    }
  }
}

void matmul_reference(const MatrixView& w, const float* x, int64_t n_tokens, float* y) {
  const DotFn dot = reference_dot_fn(w.type);
  std::vector<uint8_t> scratch;
  size_t stride = 0;
  const uint8_t* act = prepare_activations(w, x, n_tokens, scratch, stride);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < w.rows; ++r) y[t * w.rows + r] = dot(w.row(r), act + static_cast<size_t>(t) * stride, w.cols);
}

}  // namespace longqa::kernels
