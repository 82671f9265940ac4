#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace longqa::kernels {

AttentionScratch::AttentionScratch(int64_t group, int64_t head_dim, WType k_type)
    : max_(static_cast<size_t>(group)),
      sum_(static_cast<size_t>(group)),
      scores_(static_cast<size_t>(group * kTile)),
      values_(static_cast<size_t>(kTile * head_dim)),
      query_(static_cast<size_t>(group) * std::max(act_row_bytes(k_type, head_dim), static_cast<size_t>(head_dim) * sizeof(float))) {}

void attend_group(const float* q, int64_t group, const KvRows& k, const KvRows& v, int64_t n_keys, int64_t head_dim,
                  float scale, float* out, AttentionScratch& s) {
  constexpr int64_t kTile = AttentionScratch::kTile;
  const DotFn dot = dot_fn(k.type);
  // Queries in the format the keys' dot product takes (F32 keys take them as they are).
  const size_t q_stride = act_row_bytes(k.type, head_dim);
  const uint8_t* queries = reinterpret_cast<const uint8_t*>(q);
  if (q_stride > 0) {
    for (int64_t g = 0; g < group; ++g) quantize_activation(k.type, q + g * head_dim, s.query() + g * q_stride, head_dim);
    queries = s.query();
  }
  const size_t q_row = q_stride > 0 ? q_stride : static_cast<size_t>(head_dim) * sizeof(float);

  float* running_max = s.running_max();
  float* running_sum = s.running_sum();
  std::fill(running_max, running_max + group, -std::numeric_limits<float>::infinity());
  std::fill(running_sum, running_sum + group, 0.0f);
  std::fill(out, out + group * head_dim, 0.0f);
  for (int64_t j0 = 0; j0 < n_keys; j0 += kTile) {
    const int64_t n = std::min(kTile, n_keys - j0);
    // Values of the tile as F32 rows, decoded once for every head of the group.
    const float* values = reinterpret_cast<const float*>(v.row(j0));
    if (v.type != WType::F32) {
      for (int64_t j = 0; j < n; ++j) to_f32(v.type, v.row(j0 + j), s.values() + j * head_dim, head_dim);
      values = s.values();
    }
    for (int64_t g = 0; g < group; ++g) {
      float* scores = s.scores() + g * kTile;
      const uint8_t* qg = queries + static_cast<size_t>(g) * q_row;
      float tile_max = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        scores[j] = scale * dot(k.row(j0 + j), qg, head_dim);
        tile_max = std::max(tile_max, scores[j]);
      }
      const float new_max = std::max(running_max[g], tile_max);
      const float correction = std::exp(running_max[g] - new_max);
      float* og = out + g * head_dim;
      running_sum[g] *= correction;
      for (int64_t d = 0; d < head_dim; ++d) og[d] *= correction;
      for (int64_t j = 0; j < n; ++j) {
        const float p = std::exp(scores[j] - new_max);
        running_sum[g] += p;
        axpy(p, values + j * head_dim, og, head_dim);
      }
      running_max[g] = new_max;
    }
  }
  for (int64_t g = 0; g < group; ++g) {
    const float inv = running_sum[g] > 0 ? 1.0f / running_sum[g] : 0.0f;
    for (int64_t d = 0; d < head_dim; ++d) out[g * head_dim + d] *= inv;
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
