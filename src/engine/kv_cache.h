// KvCache — keys and values of every layer for up to `capacity` positions, allocated once. Laid out
// [layer][kv_head][position][head_dim] so that one head's keys are contiguous for attention.
// Owned by a Session; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace longqa {

class KvCache {
 public:
  KvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t capacity);

  int64_t capacity() const { return capacity_; }
  size_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }

  float* keys(int64_t layer, int64_t kv_head) { return k_.data() + offset(layer, kv_head); }
  float* values(int64_t layer, int64_t kv_head) { return v_.data() + offset(layer, kv_head); }

 private:
  size_t offset(int64_t layer, int64_t kv_head) const {
    return static_cast<size_t>((layer * n_kv_heads_ + kv_head) * capacity_ * head_dim_);
  }
  int64_t n_kv_heads_, head_dim_, capacity_;
  std::vector<float> k_, v_;
};

}  // namespace longqa
