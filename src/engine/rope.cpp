#include "engine/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "util/error.h"

namespace longqa {

RopeTable rope_table(const RopeConfig& rope, int64_t head_dim, int64_t context_length) {
  const int64_t half = head_dim / 2;
  RopeTable t;
  t.inv_freq.resize(static_cast<size_t>(half));
  // HF evaluates base ** (arange(0, d, 2) / d) in float32.
  std::vector<double> base(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    base[static_cast<size_t>(i)] = 1.0 / static_cast<double>(std::pow(static_cast<float>(rope.theta), exponent));
  }
  const double factor = rope.factor;
  const double original = static_cast<double>(rope.original_context > 0 ? rope.original_context : context_length);
  switch (rope.scaling) {
    case RopeScaling::None:
      for (int64_t i = 0; i < half; ++i) t.inv_freq[static_cast<size_t>(i)] = static_cast<float>(base[static_cast<size_t>(i)]);
      break;
    case RopeScaling::Linear:
      for (int64_t i = 0; i < half; ++i) t.inv_freq[static_cast<size_t>(i)] = static_cast<float>(base[static_cast<size_t>(i)] / factor);
      break;
    case RopeScaling::Llama3: {
      const double low_wavelen = original / rope.low_freq_factor;
      const double high_wavelen = original / rope.high_freq_factor;
      for (int64_t i = 0; i < half; ++i) {
        const double f = base[static_cast<size_t>(i)];
        const double wavelen = 2 * std::numbers::pi / f;
        double out;
        if (wavelen < high_wavelen) {
          out = f;
        } else if (wavelen > low_wavelen) {
          out = f / factor;
        } else {
          const double smooth = (original / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
          out = (1 - smooth) * f / factor + smooth * f;
        }
        t.inv_freq[static_cast<size_t>(i)] = static_cast<float>(out);
      }
      break;
    }
    case RopeScaling::Yarn: {
      auto correction_dim = [&](double rotations) {
        return (static_cast<double>(head_dim) * std::log(original / (rotations * 2 * std::numbers::pi))) /
               (2 * std::log(rope.theta));
      };
      const double low = std::max(std::floor(correction_dim(rope.yarn_beta_fast)), 0.0);
      double high = std::min(std::ceil(correction_dim(rope.yarn_beta_slow)), static_cast<double>(head_dim - 1));
      if (low == high) high += 0.001;
      for (int64_t i = 0; i < half; ++i) {
        const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
        const double extrapolation = 1 - ramp;
        const double f = base[static_cast<size_t>(i)];
        t.inv_freq[static_cast<size_t>(i)] = static_cast<float>(f / factor * (1 - extrapolation) + f * extrapolation);
      }
      t.attention_scaling = static_cast<float>(
          rope.attention_factor.value_or(factor <= 1 ? 1.0 : 0.1 * std::log(factor) + 1.0));
      break;
    }
  }
  if (!rope.freq_factors.empty()) {
    if (static_cast<int64_t>(rope.freq_factors.size()) != half)
      throw Error("rope_freqs has " + std::to_string(rope.freq_factors.size()) + " entries, expected " + std::to_string(half));
    for (int64_t i = 0; i < half; ++i) t.inv_freq[static_cast<size_t>(i)] /= rope.freq_factors[static_cast<size_t>(i)];
  }
  return t;
}

}  // namespace longqa
