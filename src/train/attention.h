// The trainer's causal grouped-query attention, forward and backward, memory-efficient in the
// FlashAttention way: the forward keeps only each row's output and log-sum-exp, and the backward
// recomputes the probabilities tile by tile, so memory grows with T, not T².
//
// The fast path works on tiles of 64 keys and 4 query rows, with keys and values transposed once per
// call so that scores are computed across keys in SIMD lanes, and a tile's 4 x 64 sums held in
// registers (for heads of a multiple of 64 elements; others go through L1); the backward gives each
// thread whole key tiles (their dk and dv sums stay in L1) and sums dq per thread. The *_reference functions are
// the plain per-pair definition the fast path is tested against. All are pure apart from their outputs
// and `scratch` (grown only when too small) and split their work across `threads`.
#pragma once

#include <cstdint>
#include <vector>

namespace longqa::train {

struct AttentionShape {
  int64_t seqs, t, heads, kv_heads, head_dim;
  // Per token (seqs*t), the first position of its sequence it may attend to: samples packed into one
  // sequence see only themselves. Null: every earlier position. Non-decreasing along a sequence.
  const int32_t* first_key = nullptr;
  int64_t first(int64_t row) const { return first_key ? first_key[row] : 0; }
};

// q [seqs*t, heads*hd], k and v [seqs*t, kv_heads*hd], out like q, lse [seqs*t, heads].
void attention_forward(const float* q, const float* k, const float* v, float* out, float* lse, const AttentionShape& s,
                       int threads, std::vector<float>& scratch);
// Accumulates (+=) into dq, dk, dv.
void attention_backward(const float* q, const float* k, const float* v, const float* out, const float* lse, const float* dout,
                        float* dq, float* dk, float* dv, const AttentionShape& s, int threads, std::vector<float>& scratch);

void attention_forward_reference(const float* q, const float* k, const float* v, float* out, float* lse,
                                 const AttentionShape& s);
void attention_backward_reference(const float* q, const float* k, const float* v, const float* out, const float* lse,
                                  const float* dout, float* dq, float* dk, float* dv, const AttentionShape& s);

}  // namespace longqa::train
