#include "engine/kv_cache.h"

#include <new>

#include "util/error.h"

namespace longqa {

kernels::WType parse_kv_type(const std::string& s) {
  if (s == "f32") return kernels::WType::F32;
  if (s == "f16") return kernels::WType::F16;
  if (s == "bf16") return kernels::WType::BF16;
  if (s == "q8_0") return kernels::WType::Q8_0;
  throw Error("KV cache type '" + s + "' is not supported (f32, f16, bf16, q8_0)");
}

KvCache::KvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t capacity, kernels::WType type)
    : n_layers_(n_layers), n_kv_heads_(n_kv_heads), head_dim_(head_dim), capacity_(capacity), type_(type) {
  const auto& info = kernels::wtype_info(type);
  if (type != kernels::WType::F32 && type != kernels::WType::F16 && type != kernels::WType::BF16 && type != kernels::WType::Q8_0)
    throw Error(std::string("KV cache type ") + info.name + " is not supported (f32, f16, bf16, q8_0)");
  if (head_dim % info.block != 0)
    throw Error("KV cache type " + std::string(info.name) + " needs a head size divisible by " + std::to_string(info.block) +
                "; this model's is " + std::to_string(head_dim));
  row_bytes_ = kernels::row_bytes(type, head_dim);
  bytes_per_side_ = static_cast<size_t>(n_layers * n_kv_heads * capacity) * row_bytes_;
  try {
    k_.reset(new uint8_t[bytes_per_side_]);
    v_.reset(new uint8_t[bytes_per_side_]);
  } catch (const std::bad_alloc&) {
    throw Error("not enough memory for a KV cache of " + std::to_string(capacity) + " positions (" +
                std::to_string(2 * bytes_per_side_ >> 20) + " MiB); lower --ctx or use --kv-type q8_0");
  }
}

void KvCache::store(int64_t layer, int64_t kv_head, int64_t pos, const float* key, const float* value) {
  const size_t at = offset(layer, kv_head, pos);
  kernels::from_f32(type_, key, k_.get() + at, head_dim_);
  kernels::from_f32(type_, value, v_.get() + at, head_dim_);
}

kernels::KvRows KvCache::rows(const uint8_t* base, int64_t layer, int64_t kv_head, int64_t first) const {
  return {type_, base + offset(layer, kv_head, first), row_bytes_};
}

bool KvCache::write(std::FILE* f, int64_t n) const {
  const size_t bytes = static_cast<size_t>(n) * row_bytes_;
  for (const uint8_t* side : {k_.get(), v_.get()})
    for (int64_t l = 0; l < n_layers_; ++l)
      for (int64_t h = 0; h < n_kv_heads_; ++h)
        if (std::fwrite(side + offset(l, h, 0), 1, bytes, f) != bytes) return false;
  return true;
}

bool KvCache::read(std::FILE* f, int64_t n) {
  if (n > capacity_) return false;
  const size_t bytes = static_cast<size_t>(n) * row_bytes_;
  for (uint8_t* side : {k_.get(), v_.get()})
    for (int64_t l = 0; l < n_layers_; ++l)
      for (int64_t h = 0; h < n_kv_heads_; ++h)
        if (std::fread(side + offset(l, h, 0), 1, bytes, f) != bytes) return false;
  return true;
}

}  // namespace longqa
