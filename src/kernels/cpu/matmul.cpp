#include "kernels/cpu/matmul.h"

#include <algorithm>

namespace longqa::kernels {

void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads) {
  const DotFn dot = dot_fn(w.type);
  // Blocks of rows small enough that a block stays in L2 while every token passes over it.
  constexpr int64_t kRowBlock = 16;
  const int64_t n_blocks = (w.rows + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1 && w.rows * w.cols * n_tokens > 32768)
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t r_end = std::min(w.rows, (b + 1) * kRowBlock);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* xt = x + t * w.cols;
      float* yt = y + t * w.rows;
      for (int64_t r = b * kRowBlock; r < r_end; ++r) yt[r] = dot(w.row(r), xt, w.cols);
    }
  }
}

void matmul_reference(const MatrixView& w, const float* x, int64_t n_tokens, float* y) {
  const DotFn dot = reference_dot_fn(w.type);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < w.rows; ++r) y[t * w.rows + r] = dot(w.row(r), x + t * w.cols, w.cols);
}

}  // namespace longqa::kernels
