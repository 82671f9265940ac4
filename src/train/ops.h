// The trainer's operations, forward and backward, on row-major f32 buffers: the Llama block the engine
// runs (RMSNorm, linear maps, RoPE on interleaved pairs as GGUF's llama layout has it, SwiGLU; the
// attention is in train/attention.h) and the masked cross-entropy loss. Backward functions accumulate
// (+=) into the gradients they are given, so a parameter used twice, or micro-batches, sum naturally.
//
// Functions are pure apart from their outputs and the `scratch` some take (grown only when too small,
// so a caller that keeps it allocates nothing after the first step); each splits its work across
// `threads`.
#pragma once

#include <cstdint>
#include <vector>

namespace longqa::train {

// y[t, o] = sum_i x[t, i] * w[o, i]   (w: [out, in], the engine's weight layout)
void linear_forward(const float* x, const float* w, float* y, int64_t n, int64_t in, int64_t out, int threads,
                    std::vector<float>& scratch);
// dx[t, i] += sum_o dy[t, o] * w[o, i];  dw[o, i] += sum_t dy[t, o] * x[t, i]   (dx may be null)
void linear_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, int64_t n, int64_t in, int64_t out,
                     int threads);

// y = x / rms(x) * g per row; rstd[t] keeps 1 / rms for the backward.
void rmsnorm_forward(const float* x, const float* g, float* y, float* rstd, int64_t n, int64_t d, float eps,
                     int threads);
void rmsnorm_backward(const float* x, const float* g, const float* rstd, const float* dy, float* dx, float* dg,
                      int64_t n, int64_t d, int threads);

// Rotates each head's pairs (x[2i], x[2i+1]) of every token by pos * inv_freq[i], in place; rows are
// [tokens of `seqs` sequences of length t] x [heads * head_dim]; a token's position is its index in
// its sequence. The backward rotates the gradient back (the inverse rotation).
void rope_forward(float* x, int64_t seqs, int64_t t, int64_t heads, int64_t head_dim, const float* inv_freq,
                  int threads);
void rope_backward(float* dx, int64_t seqs, int64_t t, int64_t heads, int64_t head_dim, const float* inv_freq,
                   int threads);

// h = silu(gate) * up, elementwise.
void swiglu_forward(const float* gate, const float* up, float* h, int64_t n, int threads);
void swiglu_backward(const float* gate, const float* up, const float* dh, float* dgate, float* dup, int64_t n,
                     int threads);

// The mean over positions with mask[t] != 0 of -log softmax(logits[t])[target[t]], and (when dlogits
// is not null) its gradient with respect to the logits, scaled by `scale` (1 / micro-batches).
// Returns the summed loss; `counted` receives the number of positions counted.
double cross_entropy(const float* logits, const int32_t* targets, const uint8_t* mask, int64_t n, int64_t vocab, float* dlogits,
                     float scale, int64_t& counted, int threads);

}  // namespace longqa::train
