#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_features.h"
#include "util/error.h"

namespace longqa::kernels {

AttentionScratch::AttentionScratch(int64_t max_queries, int64_t head_dim)
    : max_(static_cast<size_t>(max_queries)),
      sum_(static_cast<size_t>(max_queries)),
      scores_(static_cast<size_t>(max_queries * kKeyTile)),
      keys_(static_cast<size_t>(kKeyTile * head_dim)),
      values_(static_cast<size_t>(kKeyTile * head_dim)),
      keys_t_(static_cast<size_t>(kKeyTile * head_dim)) {}

namespace {
// Rows [j0, j0 + n) as F32: the cache itself when it holds F32, else decoded into `buffer`.
const float* decode_tile(const KvRows& rows, int64_t j0, int64_t n, int64_t head_dim, float* buffer) {
  if (rows.type == WType::F32) return reinterpret_cast<const float*>(rows.row(j0));
  for (int64_t j = 0; j < n; ++j) to_f32(rows.type, rows.row(j0 + j), buffer + j * head_dim, head_dim);
  return buffer;
}

// How a call's scores are computed: per key with dot_fn, or in AVX-512 vectors over keys as stored, or
// over keys laid out transposed, once enough queries share each tile to pay for the transposition.
enum class Path { per_key, rows, transposed };
Path choose_path(int64_t queries, int64_t head_dim) {
  static const bool avx512 = cpu_features().avx512f;
  const bool power_of_two = (head_dim & (head_dim - 1)) == 0;
  if (!avx512 || head_dim < 16 || head_dim > 256 || !power_of_two) return Path::per_key;
  return queries >= 8 ? Path::transposed : Path::rows;
}
}  // namespace

void attend(const QueryTile& tile, const KvRows& k, const KvRows& v, int64_t head_dim, float scale, AttentionScratch& s) {
  constexpr int64_t kTile = AttentionScratch::kKeyTile;
  const int64_t queries = tile.tokens * tile.group;
  if (queries > s.max_queries()) throw Error("attention tile larger than its scratch");
  if (k.stride != row_bytes(k.type, head_dim) || v.stride != row_bytes(v.type, head_dim))
    throw Error("attention: cached rows must follow one another");
  const DotFn dot = dot_fn(WType::F32);
  const Path path = choose_path(queries, head_dim);
  // The row-wise vectors read the rows where they are stored; the other paths decode each tile to F32.
  const bool as_stored = path == Path::rows && k.type == v.type;
  const WType rows_type = as_stored ? k.type : WType::F32;
  float* running_max = s.running_max();
  float* running_sum = s.running_sum();
  std::fill(running_max, running_max + queries, -std::numeric_limits<float>::infinity());
  std::fill(running_sum, running_sum + queries, 0.0f);
  int64_t first = tile.begin[0], last = tile.end[0];
  for (int64_t t = 0; t < tile.tokens; ++t) {
    first = std::min(first, tile.begin[t]);
    last = std::max(last, tile.end[t]);
    std::fill(tile.out + static_cast<size_t>(t) * tile.token_stride,
              tile.out + static_cast<size_t>(t) * tile.token_stride + tile.group * head_dim, 0.0f);
  }
  for (int64_t j0 = first; j0 < last; j0 += kTile) {
    const int64_t n = std::min(kTile, last - j0);
    const float* keys = as_stored ? nullptr : decode_tile(k, j0, n, head_dim, s.keys());
    const float* values = as_stored ? nullptr : decode_tile(v, j0, n, head_dim, s.values());
    const void* key_rows = as_stored ? static_cast<const void*>(k.row(j0)) : keys;
    const void* value_rows = as_stored ? static_cast<const void*>(v.row(j0)) : values;
    if (path == Path::transposed) {
      float* keys_t = s.keys_transposed();
      for (int64_t j = 0; j < n; ++j)
        for (int64_t d = 0; d < head_dim; ++d) keys_t[d * kTile + j] = keys[j * head_dim + d];
      for (int64_t j = n; j < kTile; ++j)  // a partial tile's missing keys score 0 (and are masked)
        for (int64_t d = 0; d < head_dim; ++d) keys_t[d * kTile + j] = 0.0f;
    }
    for (int64_t t = 0; t < tile.tokens; ++t) {
      // This token's keys within the tile.
      const int64_t lo = std::max<int64_t>(tile.begin[t] - j0, 0), hi = std::min<int64_t>(tile.end[t] - j0, n);
      if (lo >= hi) continue;
      if (path == Path::rows) {
        const int64_t qi = t * tile.group;
        avx512::attend_key_rows(tile.q + static_cast<size_t>(t) * tile.token_stride, tile.group, rows_type, key_rows,
                                value_rows, lo, hi, head_dim, scale, running_max + qi, running_sum + qi,
                                tile.out + static_cast<size_t>(t) * tile.token_stride);
        continue;
      }
      for (int64_t g = 0; g < tile.group; ++g) {
        const int64_t qi = t * tile.group + g;
        const float* q = tile.q + static_cast<size_t>(t) * tile.token_stride + g * head_dim;
        float* out = tile.out + static_cast<size_t>(t) * tile.token_stride + g * head_dim;
        if (path == Path::transposed) {
          avx512::attend_key_tile(q, s.keys_transposed(), values, lo, hi, head_dim, scale, running_max[qi], running_sum[qi], out);
          continue;
        }
        float* scores = s.scores() + qi * kTile;
        float tile_max = -std::numeric_limits<float>::infinity();
        for (int64_t j = lo; j < hi; ++j) {
          scores[j] = scale * dot(keys + j * head_dim, q, head_dim);
          tile_max = std::max(tile_max, scores[j]);
        }
        const float new_max = std::max(running_max[qi], tile_max);
        const float correction = std::exp(running_max[qi] - new_max);
        running_sum[qi] *= correction;
        for (int64_t d = 0; d < head_dim; ++d) out[d] *= correction;
        for (int64_t j = lo; j < hi; ++j) {
          const float p = std::exp(scores[j] - new_max);
          running_sum[qi] += p;
          axpy(p, values + j * head_dim, out, head_dim);
        }
        running_max[qi] = new_max;
      }
    }
  }
  for (int64_t t = 0; t < tile.tokens; ++t)
    for (int64_t g = 0; g < tile.group; ++g) {
      const int64_t qi = t * tile.group + g;
      const float inv = running_sum[qi] > 0 ? 1.0f / running_sum[qi] : 0.0f;
      float* out = tile.out + static_cast<size_t>(t) * tile.token_stride + g * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) out[d] *= inv;
    }
}

void attend_reference(const float* q, const float* k, const float* v, int64_t n_keys, int64_t head_dim, float scale,
                      float* out) {
  std::vector<double> p(static_cast<size_t>(n_keys));
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n_keys; ++j) {
    double s = 0;
    for (int64_t d = 0; d < head_dim; ++d) s += static_cast<double>(q[d]) * k[j * head_dim + d];
    p[static_cast<size_t>(j)] = s * scale;
    mx = std::max(mx, p[static_cast<size_t>(j)]);
  }
  double sum = 0;
  for (auto& x : p) sum += (x = std::exp(x - mx));
  for (int64_t d = 0; d < head_dim; ++d) {
    double acc = 0;
    for (int64_t j = 0; j < n_keys; ++j) acc += p[static_cast<size_t>(j)] * v[j * head_dim + d];
    out[d] = static_cast<float>(acc / sum);
  }
}

}  // namespace longqa::kernels
