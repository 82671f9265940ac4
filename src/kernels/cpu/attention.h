// Causal attention over a KV cache, with a streaming (online) softmax over tiles of keys: memory stays
// O(head_dim) per query however long the context is. One call serves a tile of tokens times the query
// heads that share one KV head (grouped-query attention), so each tile of cached keys and values comes
// from memory once for all of them. Keys and values may be stored as F32, F16, BF16 or Q8_0.
// Where the CPU has AVX-512 and a head has 16-256 elements (a power of two), scores, exponentials and
// sums run in vectors: over keys decoded to F32 and laid out transposed for a tile of 8 queries or more
// (prompts), over keys as stored, widened in registers once for up to four queries, for fewer
// (decoding: one token's group of heads). Otherwise per-key dot products over the tile decoded to F32.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/dot.h"

namespace longqa::kernels {

// Cached rows of one KV head: row j at data + j * stride, in `type`; rows follow one another (stride is
// row_bytes(type, head_dim), which attend checks).
struct KvRows {
  WType type = WType::F32;
  const uint8_t* data = nullptr;
  size_t stride = 0;
  const uint8_t* row(int64_t j) const { return data + static_cast<size_t>(j) * stride; }
};

// The queries of one call: `tokens` tokens, each with `group` consecutive query heads starting at
// q + t * token_stride; token t attends to keys [begin[t], end[t]). Outputs share the layout.
struct QueryTile {
  const float* q = nullptr;
  float* out = nullptr;
  size_t token_stride = 0;  // floats between consecutive tokens' first heads
  int64_t tokens = 0;
  int64_t group = 0;
  const int64_t* begin = nullptr;
  const int64_t* end = nullptr;
};

// Per-thread working memory for attend, sized once for the largest tile.
class AttentionScratch {
 public:
  static constexpr int64_t kKeyTile = 64;
  AttentionScratch(int64_t max_queries, int64_t head_dim);
  float* scores() { return scores_.data(); }
  float* keys() { return keys_.data(); }
  float* keys_transposed() { return keys_t_.data(); }
  float* values() { return values_.data(); }
  float* running_max() { return max_.data(); }
  float* running_sum() { return sum_.data(); }
  int64_t max_queries() const { return static_cast<int64_t>(max_.size()); }

 private:
  std::vector<float> max_, sum_;        // [query]: each query's online-softmax state
  std::vector<float> scores_;           // [query][kKeyTile]
  std::vector<float> keys_, values_;    // [kKeyTile][head_dim]: one tile decoded to F32
  std::vector<float> keys_t_;           // [head_dim][kKeyTile]: the keys of the AVX-512 path
};

// out = softmax(scale * q . K[j]) . V[j] over each token's key range, for every query of the tile.
void attend(const QueryTile& tile, const KvRows& k, const KvRows& v, int64_t head_dim, float scale, AttentionScratch& s);

namespace avx512 {
// One query against keys [lo, hi) of a decoded tile: keys_t [head_dim][kKeyTile], values
// [kKeyTile][head_dim], head_dim 16, 32, 64, 128 or 256. Folds them into the query's online-softmax
// state (running_max, running_sum) and its unnormalised output.
void attend_key_tile(const float* q, const float* keys_t, const float* values, int64_t lo, int64_t hi, int64_t head_dim,
                     float scale, float& running_max, float& running_sum, float* out);
// The same for `queries` queries (q and out: rows of head_dim one after another; running_max and
// running_sum: one each) over keys and values as stored, rows of head_dim elements of `type` (F32,
// F16, BF16 or Q8_0) one after another: [kKeyTile][head_dim]. Each row is widened once for up to four
// queries: a decoding token's group of heads.
void attend_key_rows(const float* q, int64_t queries, WType type, const void* keys, const void* values, int64_t lo,
                     int64_t hi, int64_t head_dim, float scale, float* running_max, float* running_sum, float* out);
}  // namespace avx512

// Plain two-pass definition for one head over F32 rows (materialises all scores): what attend is
// tested against.
void attend_reference(const float* q, const float* k, const float* v, int64_t n_keys, int64_t head_dim, float scale,
                      float* out);

}  // namespace longqa::kernels
