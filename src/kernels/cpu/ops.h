// Element-wise and per-row operations of the transformer block, on F32 activations.
#pragma once

#include <cstdint>

namespace longqa::kernels {

// out = x / sqrt(mean(x^2) + eps) * weight, over one row of n (out may alias x).
void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps);

// gate = silu(gate) * up, n elements.
void swiglu(float* gate, const float* up, int64_t n);

// x += y, n elements.
void add(float* x, const float* y, int64_t n);

// Rotates n_heads consecutive head vectors of head_dim by per-frequency angles given as cos/sin
// (head_dim / 2 each). Interleaved pairs are (2i, 2i+1); half-split pairs are (i, i + head_dim/2).
void rope(float* heads, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin, bool interleaved);

}  // namespace longqa::kernels
