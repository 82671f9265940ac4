// Sampler: each filter's effect, determinism by seed, and draws that follow the distribution.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/sampler.h"
#include "util/error.h"

namespace longqa {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f, -1.0f};

TEST(Sampler, GreedyTakesTheArgmax) {
  Sampler s({}, 6);
  EXPECT_EQ(s.sample(kLogits, {}), 1);
}

TEST(Sampler, TopKOneAndTinyTopPAreGreedy) {
  Sampler k1({.temperature = 1.5f, .top_k = 1, .seed = 3}, 6);
  Sampler p0({.temperature = 1.5f, .top_p = 0.01f, .seed = 3}, 6);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(k1.sample(kLogits, {}), 1);
    EXPECT_EQ(p0.sample(kLogits, {}), 1);
  }
}

TEST(Sampler, MinPDropsTheUnlikely) {
  // p(4)/p(1) = e^-0.1 ~ 0.905; p(2)/p(1) = e^-1: min-p 0.5 keeps only tokens 1 and 4.
  Sampler s({.temperature = 1.0f, .min_p = 0.5f, .seed = 9}, 6);
  for (int i = 0; i < 200; ++i) {
    const int32_t t = s.sample(kLogits, {});
    EXPECT_TRUE(t == 1 || t == 4) << t;
  }
}

TEST(Sampler, RepetitionPenaltyFollowsHf) {
  // Penalty 2 on token 1 (3.0 -> 1.5) makes token 4 (2.9) the argmax; negatives are multiplied.
  Sampler s({.repeat_penalty = 2.0f}, 6);
  EXPECT_EQ(s.sample(kLogits, std::vector<int32_t>{1, 1, 1}), 4);
  std::vector<float> neg = {-1.0f, -0.6f};
  Sampler n({.repeat_penalty = 2.0f}, 2);
  EXPECT_EQ(n.sample(neg, std::vector<int32_t>{1}), 0);  // -0.6 -> -1.2
  Sampler window({.repeat_penalty = 2.0f, .repeat_last_n = 1}, 6);
  EXPECT_EQ(window.sample(kLogits, std::vector<int32_t>{1, 0}), 1);  // token 1 is outside the window
}

TEST(Sampler, SameSeedSameDraws) {
  Sampler a({.temperature = 1.0f, .seed = 42}, 6), b({.temperature = 1.0f, .seed = 42}, 6);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(kLogits, {}), b.sample(kLogits, {}));
}

TEST(Sampler, DrawsFollowTheSoftmax) {
  Sampler s({.temperature = 1.0f, .seed = 7}, 6);
  std::vector<int> counts(6);
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[static_cast<size_t>(s.sample(kLogits, {}))];
  double z = 0;
  for (float l : kLogits) z += std::exp(l);
  for (size_t i = 0; i < kLogits.size(); ++i) {
    const double p = std::exp(kLogits[i]) / z;
    EXPECT_NEAR(counts[i] / static_cast<double>(n), p, 4 * std::sqrt(p * (1 - p) / n) + 1e-3) << i;
  }
}

TEST(Sampler, RejectsNonsense) {
  EXPECT_THROW(Sampler({.top_p = 0.0f}, 6), Error);
  EXPECT_THROW(Sampler({.top_k = -1}, 6), Error);
  EXPECT_THROW(Sampler({.min_p = 2.0f}, 6), Error);
  EXPECT_THROW(Sampler({.repeat_penalty = 0.0f}, 6), Error);
  Sampler s({}, 6);
  EXPECT_THROW(s.sample(std::vector<float>{1, 2}, {}), Error);
}

}  // namespace
}  // namespace longqa
