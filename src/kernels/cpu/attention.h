// Causal attention of one query head over a run of cached keys/values, computed with a streaming
// (online) softmax over tiles of keys: memory stays O(head_dim) however long the context is.
#pragma once

#include <cstdint>

namespace longqa::kernels {

// out[head_dim] = softmax(scale * q . K[j]) . V[j] over j < n_keys, with K[j] = k + j * head_dim
// (likewise V): one KV head's cache, positions contiguous.
void attend(const float* q, const float* k, const float* v, int64_t n_keys, int64_t head_dim, float scale, float* out);

// Plain two-pass definition (materialises all scores) that attend() is tested against.
void attend_reference(const float* q, const float* k, const float* v, int64_t n_keys, int64_t head_dim, float scale,
                      float* out);

}  // namespace longqa::kernels
