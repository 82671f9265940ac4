#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/dot.h"

namespace longqa::kernels {

void attend(const float* q, const float* k, const float* v, int64_t n_keys, int64_t head_dim, float scale, float* out) {
  constexpr int64_t kTile = 64;
  const DotFn dot = dot_fn(WType::F32);
  float scores[kTile];
  float running_max = -std::numeric_limits<float>::infinity();
  float running_sum = 0;
  std::fill(out, out + head_dim, 0.0f);
  for (int64_t j0 = 0; j0 < n_keys; j0 += kTile) {
    const int64_t n = std::min(kTile, n_keys - j0);
    float tile_max = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) {
      scores[j] = scale * dot(k + (j0 + j) * head_dim, q, head_dim);
      tile_max = std::max(tile_max, scores[j]);
    }
    const float new_max = std::max(running_max, tile_max);
    const float correction = std::exp(running_max - new_max);
    running_sum *= correction;
    for (int64_t d = 0; d < head_dim; ++d) out[d] *= correction;
    for (int64_t j = 0; j < n; ++j) {
      const float p = std::exp(scores[j] - new_max);
      running_sum += p;
      const float* vj = v + (j0 + j) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) out[d] += p * vj[d];
    }
    running_max = new_max;
  }
  const float inv = running_sum > 0 ? 1.0f / running_sum : 0.0f;
  for (int64_t d = 0; d < head_dim; ++d) out[d] *= inv;
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
