#include "engine/kv_cache.h"

#include <new>

#include "util/error.h"

namespace longqa {

KvCache::KvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t capacity)
    : n_kv_heads_(n_kv_heads), head_dim_(head_dim), capacity_(capacity) {
  const auto n = static_cast<size_t>(n_layers * n_kv_heads * capacity * head_dim);
  try {
    k_.resize(n);
    v_.resize(n);
  } catch (const std::bad_alloc&) {
    throw Error("not enough memory for a KV cache of " + std::to_string(capacity) + " positions (" +
                std::to_string(2 * n * sizeof(float) >> 20) + " MiB); lower --ctx");
  }
}

}  // namespace longqa
