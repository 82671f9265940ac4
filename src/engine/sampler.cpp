#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace longqa {

Sampler::Sampler(const SamplerOptions& options, int64_t vocab_size)
    : o_(options), rng_(options.seed), adjusted_(static_cast<size_t>(vocab_size)), candidates_(static_cast<size_t>(vocab_size)) {
  if (o_.top_k < 0) throw Error("top-k must not be negative");
  if (!(o_.top_p > 0 && o_.top_p <= 1)) throw Error("top-p must be in (0, 1]");
  if (!(o_.min_p >= 0 && o_.min_p <= 1)) throw Error("min-p must be in [0, 1]");
  if (!(o_.repeat_penalty > 0)) throw Error("repetition penalty must be positive");
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  if (logits.size() != adjusted_.size()) throw Error("sampler: logits size does not match the vocabulary");
  std::copy(logits.begin(), logits.end(), adjusted_.begin());
  if (o_.repeat_penalty != 1.0f) {
    const size_t n = o_.repeat_last_n < 0 ? history.size() : std::min(history.size(), static_cast<size_t>(o_.repeat_last_n));
    // Computed from the original logits, so a token seen several times is penalised once (as HF does).
    for (int32_t id : history.subspan(history.size() - n)) {
      if (id < 0 || static_cast<size_t>(id) >= adjusted_.size()) continue;
      const float x = logits[static_cast<size_t>(id)];
      adjusted_[static_cast<size_t>(id)] = x < 0 ? x * o_.repeat_penalty : x / o_.repeat_penalty;
    }
  }
  if (o_.temperature <= 0) return static_cast<int32_t>(std::max_element(adjusted_.begin(), adjusted_.end()) - adjusted_.begin());

  size_t n = adjusted_.size();
  for (size_t i = 0; i < n; ++i) candidates_[i] = {adjusted_[i] / o_.temperature, static_cast<int32_t>(i)};
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first; };
  if (o_.top_k > 0 && static_cast<size_t>(o_.top_k) < n) {
    std::partial_sort(candidates_.begin(), candidates_.begin() + o_.top_k, candidates_.begin() + static_cast<ptrdiff_t>(n), by_logit);
    n = static_cast<size_t>(o_.top_k);
  } else {
    std::sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(n), by_logit);
  }
  // Softmax over the survivors (sorted, so the first is the maximum).
  const float max = candidates_[0].first;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += (candidates_[i].first = std::exp(candidates_[i].first - max));
  for (size_t i = 0; i < n; ++i) candidates_[i].first = static_cast<float>(candidates_[i].first / sum);
  if (o_.top_p < 1.0f) {
    double cumulative = 0;
    size_t keep = 0;
    while (keep < n) {
      cumulative += candidates_[keep++].first;
      if (cumulative >= o_.top_p) break;
    }
    n = keep;
  }
  if (o_.min_p > 0) {
    const float threshold = o_.min_p * candidates_[0].first;
    size_t keep = 1;
    while (keep < n && candidates_[keep].first >= threshold) ++keep;
    n = keep;
  }
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += candidates_[i].first;
  double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  for (size_t i = 0; i < n; ++i) {
    r -= candidates_[i].first;
    if (r < 0) return candidates_[i].second;
  }
  return candidates_[n - 1].second;
}

}  // namespace longqa
