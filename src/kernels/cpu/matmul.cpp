#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/gemm_f32.h"
#include "kernels/cpu/gemm_q.h"
#include "kernels/cpu/quant.h"

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

using TiledProduct = void (*)(const MatrixView&, const float*, int64_t, float*, int, std::vector<uint8_t>&);

// The tiled product a batch of tokens takes where the CPU has one (int8 for quantized weights; for
// float weights BF16 on AMX, else float FMA on AVX-512), or nullptr for the row-by-row path: tiles
// unpack the weights once per call and reuse them across the tokens. Float FMA tiles widen every
// weight panel first, which pays only over enough tokens.
TiledProduct tiled_product(const MatrixView& w, int64_t n_tokens) {
  if (n_tokens >= 4 && gemm_q_available(w.type))
    return [](const MatrixView& m, const float* x, int64_t n, float* y, int threads, std::vector<uint8_t>& scratch) {
      gemm_q(m, x, n, y, threads, scratch);
    };
  if (n_tokens >= 4 && gemm_bf16_available(w)) return gemm_bf16;
  if (n_tokens >= 16 && gemm_f32_available(w)) return gemm_f32;
  return nullptr;
}

// The row-by-row path of single tokens and small batches, over one or more matrices that read the same
// activations: blocks of rows small enough that a block stays in L2 while every token passes over it,
// shared among the threads in one pass over all the matrices (one barrier, not one per matrix).
void product_by_rows(std::span<const MatrixView> ws, const uint8_t* act, size_t stride, int64_t n_tokens,
                     std::span<float* const> ys, int n_threads) {
  constexpr int64_t kRowBlock = 16;  // a multiple of every interleaved type's group
  auto blocks = [](const MatrixView& w) { return (w.rows + kRowBlock - 1) / kRowBlock; };
  const DotFn dot = dot_fn(ws[0].type);
  const GroupDotFn group_dot = group_dot_fn(ws[0].type);
  const int64_t group = wtype_info(ws[0].type).rows;
  // F32 activations wider than 16 KiB do not stay in L1 beside the streaming weights: one row at a
  // time then reloads them from L2 for every row, and a Zen 4 core streamed F16 rows of 8,192 at 11-12
  // GB/s where rows of 2,048 ran at 27-30; four rows per load of the activations ran at 18. Narrower
  // rows stream faster one at a time (BENCHMARKS.md).
  const Dot4Fn dot4 = stride > 16384 ? dot4_fn(ws[0].type) : nullptr;
  int64_t n_blocks = 0, work = 0;
  for (const MatrixView& w : ws) {
    n_blocks += blocks(w);
    work += w.rows * w.cols * n_tokens;
  }
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1 && work > 32768)
  for (int64_t b = 0; b < n_blocks; ++b) {
    size_t i = 0;
    int64_t block = b;
    while (block >= blocks(ws[i])) block -= blocks(ws[i++]);
    const MatrixView& w = ws[i];
    const auto* weights = static_cast<const uint8_t*>(w.data);
    const size_t row_stride = w.row_stride();
    const int64_t r_end = std::min(w.rows, (block + 1) * kRowBlock);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const uint8_t* xt = act + static_cast<size_t>(t) * stride;
      float* yt = ys[i] + t * w.rows;
      if (group_dot)
        for (int64_t r = block * kRowBlock; r < r_end; r += group)
          group_dot(weights + static_cast<size_t>(r) * row_stride, xt, w.cols, yt + r);
      else {
        int64_t r = block * kRowBlock;
        if (dot4)
          for (; r + 4 <= r_end; r += 4)
            dot4(weights + static_cast<size_t>(r) * row_stride, row_stride, xt, w.cols, yt + r);
        for (; r < r_end; ++r) yt[r] = dot(weights + static_cast<size_t>(r) * row_stride, xt, w.cols);
      }
    }
  }
}

}  // namespace

void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, int n_threads, std::vector<uint8_t>& scratch) {
  if (const TiledProduct tiled = tiled_product(w, n_tokens)) return tiled(w, x, n_tokens, y, n_threads, scratch);
  size_t stride = 0;
  const uint8_t* act = prepare_activations(w, x, n_tokens, scratch, stride);
  product_by_rows({&w, 1}, act, stride, n_tokens, {&y, 1}, n_threads);
}

void matmul_same_input(std::span<const MatrixView> ws, std::span<float* const> ys, const float* x, int64_t n_tokens,
                       int n_threads, std::vector<uint8_t>& scratch) {
  if (ws.size() != ys.size() || ws.empty()) throw std::invalid_argument("matmul_same_input: one output for each of one or more matrices");
  const bool together = std::all_of(ws.begin(), ws.end(), [&](const MatrixView& w) {
    return w.type == ws[0].type && w.cols == ws[0].cols && !tiled_product(w, n_tokens);
  });
  if (!together) {
    for (size_t i = 0; i < ws.size(); ++i) matmul(ws[i], x, n_tokens, ys[i], n_threads, scratch);
    return;
  }
  size_t stride = 0;
  const uint8_t* act = prepare_activations(ws[0], x, n_tokens, scratch, stride);
  product_by_rows(ws, act, stride, n_tokens, ys, n_threads);
}

void matmul_reference(const MatrixView& w, const float* x, int64_t n_tokens, float* y) {
  const DotFn dot = reference_dot_fn(w.type);
  const GroupDotFn group_dot = reference_group_dot_fn(w.type);
  const int64_t group = wtype_info(w.type).rows;
  std::vector<uint8_t> scratch;
  size_t stride = 0;
  const uint8_t* act = prepare_activations(w, x, n_tokens, scratch, stride);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const uint8_t* xt = act + static_cast<size_t>(t) * stride;
    if (group_dot)
      for (int64_t r = 0; r < w.rows; r += group) group_dot(w.row(r), xt, w.cols, y + t * w.rows + r);
    else
      for (int64_t r = 0; r < w.rows; ++r) y[t * w.rows + r] = dot(w.row(r), xt, w.cols);
  }
}

void deinterleaved_row(const MatrixView& w, int64_t r, BlockQ4_0* out) {
  reference::deinterleave_q4_0(static_cast<const BlockQ4_0x8*>(w.row(r - r % 8)), w.cols / kQK, static_cast<int>(r % 8),
                               out);
}

void to_f32(const MatrixView& w, float* dst) {
  if (w.type != WType::Q4_0x8) return to_f32(w.type, w.data, dst, w.rows * w.cols);
  std::vector<BlockQ4_0> row(static_cast<size_t>(w.cols / kQK));
  for (int64_t r = 0; r < w.rows; ++r) {
    deinterleaved_row(w, r, row.data());
    reference::dequantize_q4_0(row.data(), dst + r * w.cols, w.cols);
  }
}

MatrixView interleave_for_decode(const MatrixView& w, void* bytes) {
  const WType layout = decode_layout(w.type, w.rows);
  if (layout == w.type) return w;
  // Q4_0 into Q4_0x8: eight rows at a time through a copy, into the same bytes.
  const int64_t blocks = w.cols / kQK;
  const size_t group_bytes = 8 * w.row_stride();
  std::vector<uint8_t> rows(group_bytes);
  auto* out = static_cast<uint8_t*>(bytes);
  for (int64_t r = 0; r < w.rows; r += 8) {
    uint8_t* group = out + static_cast<size_t>(r) * w.row_stride();
    std::memcpy(rows.data(), group, group_bytes);
    reference::interleave_q4_0(rows.data(), w.row_stride(), blocks, reinterpret_cast<BlockQ4_0x8*>(group));
  }
  return {layout, bytes, w.rows, w.cols};
}

}  // namespace longqa::kernels
