// Matrix products against weight matrices stored row-major as [rows = outputs, cols = inputs], the
// layout of both HF checkpoints and GGUF files. Views only: the weights belong to the model.
#pragma once

#include <cstdint>

#include "kernels/cpu/dot.h"

namespace longqa::kernels {

struct MatrixView {
  WType type = WType::F32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  const void* row(int64_t r) const {
    return static_cast<const uint8_t*>(data) + static_cast<size_t>(r) * static_cast<size_t>(cols) * wtype_size(type);
  }
  explicit operator bool() const { return data != nullptr; }
};

// y[t * w.rows + r] = dot(w.row(r), x[t * w.cols ...]) for t < n_tokens. Rows are split across
// n_threads; each weight row is read once per call and reused for all tokens.
void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads);

// The same product through the scalar reference dot: the definition fast paths are tested against.
void matmul_reference(const MatrixView& w, const float* x, int64_t n_tokens, float* y);

}  // namespace longqa::kernels
