// Matrix products against weight matrices stored row-major as [rows = outputs, cols = inputs], the
// layout of both HF checkpoints and GGUF files, in any weight type, or with rows interleaved in groups
// (Q4_0x8, made at load for the decode kernels). Views only: the weights belong to the model.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/cpu/dot.h"

namespace longqa::kernels {

struct BlockQ4_0;

struct MatrixView {
  WType type = WType::F32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  size_t row_stride() const { return row_bytes(type, cols); }
  // Row r's bytes; for an interleaved type, those of the group that starts at row r.
  const void* row(int64_t r) const { return static_cast<const uint8_t*>(data) + static_cast<size_t>(r) * row_stride(); }
  size_t bytes() const { return static_cast<size_t>(rows) * row_stride(); }
  explicit operator bool() const { return data != nullptr; }
};

// y[t * w.rows + r] = w.row(r) . x[t * w.cols ...] for t < n_tokens. Quantized weights first quantize
// x into `scratch`, which grows only when too small: size it up front to keep a loop allocation-free.
// Rows are split across n_threads; each weight row is read once per call and reused for all tokens.
void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch);

// matmul(ws[i], x, ..., ys[i]) for every i: matrices that read the same input (a layer's Q, K and V;
// gate and up). Where they share a type and take the row-by-row path (decode), x is quantized once
// and the threads pass over all their rows together, meeting once instead of once per matrix.
void matmul_same_input(std::span<const MatrixView> ws, std::span<float* const> ys, const float* x, int64_t n_tokens,
                       int n_threads, std::vector<uint8_t>& scratch);

// The same product through the scalar reference dot: the definition fast paths are tested against.
void matmul_reference(const MatrixView& w, const float* x, int64_t n_tokens, float* y);

// Row r of a Q4_0x8 matrix in the file's layout: w.cols / 32 blocks at out.
void deinterleaved_row(const MatrixView& w, int64_t r, BlockQ4_0* out);

// All of w as F32, [rows][cols], whatever its type and layout.
void to_f32(const MatrixView& w, float* dst);

// Rearranges w's rows in place into decode_layout(w.type, w.rows) (see dot.h) and returns the view of
// the result; w unchanged where that layout is w's own. `bytes` is w's data, writable: the same bytes.
MatrixView interleave_for_decode(const MatrixView& w, void* bytes);

}  // namespace longqa::kernels
