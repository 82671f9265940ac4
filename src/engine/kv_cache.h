// KvCache — keys and values of every layer for up to `capacity` positions, allocated once, stored as
// F32, F16, BF16 or Q8_0 (`--kv-type`). Laid out [layer][kv_head][position] so that one head's rows
// are contiguous for attention. Owned by a Session; store() writes only its position's rows, so stores to
// different positions may run at once (a prompt's tokens do); nothing else is thread-safe for writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "kernels/cpu/attention.h"

namespace longqa {

kernels::WType parse_kv_type(const std::string& s);  // f32, f16, bf16, q8_0

class KvCache {
 public:
  KvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t capacity, kernels::WType type);

  int64_t capacity() const { return capacity_; }
  kernels::WType type() const { return type_; }
  size_t bytes() const { return 2 * bytes_per_side_; }

  // Encodes one position's key and value rows (head_dim floats each) of one head.
  void store(int64_t layer, int64_t kv_head, int64_t pos, const float* key, const float* value);
  // Rows of one head from position `first` on.
  kernels::KvRows keys(int64_t layer, int64_t kv_head, int64_t first) const { return rows(k_.get(), layer, kv_head, first); }
  kernels::KvRows values(int64_t layer, int64_t kv_head, int64_t first) const { return rows(v_.get(), layer, kv_head, first); }

  // The first n positions of every layer and head, raw (in this cache's type), to or from a file.
  // Return false on an I/O error or a short read.
  bool write(std::FILE* f, int64_t n) const;
  bool read(std::FILE* f, int64_t n);

 private:
  kernels::KvRows rows(const uint8_t* base, int64_t layer, int64_t kv_head, int64_t first) const;
  size_t offset(int64_t layer, int64_t kv_head, int64_t pos) const {
    return (static_cast<size_t>(layer * n_kv_heads_ + kv_head) * static_cast<size_t>(capacity_) + static_cast<size_t>(pos)) * row_bytes_;
  }

  int64_t n_layers_, n_kv_heads_, head_dim_, capacity_;
  kernels::WType type_;
  size_t row_bytes_;
  size_t bytes_per_side_;
  std::unique_ptr<uint8_t[]> k_, v_;  // uninitialised: only written positions are ever read
};

}  // namespace longqa
