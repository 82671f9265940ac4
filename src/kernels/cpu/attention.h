// Causal attention over a KV cache, with a streaming (online) softmax over tiles of keys: memory stays
// O(head_dim) per head however long the context is. Grouped-query aware: the query heads that share
// one KV head are processed together, so each cached key and value is read (and decoded) once per
// group. Keys and values may be stored as F32, F16, BF16 or Q8_0.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/dot.h"

namespace longqa::kernels {

// Cached rows of one KV head: row j at data + j * stride, in `type`.
struct KvRows {
  WType type = WType::F32;
  const uint8_t* data = nullptr;
  size_t stride = 0;
  const uint8_t* row(int64_t j) const { return data + static_cast<size_t>(j) * stride; }
};

// Per-thread working memory for attend_group, sized once for a group and head size.
class AttentionScratch {
 public:
  AttentionScratch(int64_t group, int64_t head_dim, WType k_type);
  float* scores() { return scores_.data(); }
  float* values() { return values_.data(); }
  uint8_t* query() { return query_.data(); }
  float* running_max() { return max_.data(); }
  float* running_sum() { return sum_.data(); }
  static constexpr int64_t kTile = 64;

 private:
  std::vector<float> max_, sum_;  // [group]: the online softmax state of each head
  std::vector<float> scores_;  // [group][kTile]
  std::vector<float> values_;  // [kTile][head_dim], decoded values of one tile
  std::vector<uint8_t> query_; // queries in the keys' activation format
};

// out[g] = softmax(scale * q[g] . K[j]) . V[j] over j < n_keys, for the `group` query heads q[g]
// (head_dim floats each, contiguous) that share the KV head whose rows are k and v.
void attend_group(const float* q, int64_t group, const KvRows& k, const KvRows& v, int64_t n_keys, int64_t head_dim,
                  float scale, float* out, AttentionScratch& scratch);

// Plain two-pass definition for one head over F32 rows (materialises all scores): what
// attend_group is tested against.
void attend_reference(const float* q, const float* k, const float* v, int64_t n_keys, int64_t head_dim, float scale,
                      float* out);

}  // namespace longqa::kernels
