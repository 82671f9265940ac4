// Fast kernels against their scalar references over odd sizes, float-format conversions, and RoPE
// frequencies against the ones HF computed for each fixture model.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>

#include "engine/model_config.h"
#include "engine/rope.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/dot.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/gemm_f32.h"
#include "kernels/cpu/matmul.h"
#include "test_util.h"
#include "util/fp16.h"

namespace longqa {
namespace {

using kernels::WType;

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Weight bytes of the given type holding (a rounding of) values.
std::vector<uint8_t> encode(WType t, const std::vector<float>& v) {
  std::vector<uint8_t> out(kernels::row_bytes(t, static_cast<int64_t>(v.size())));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == WType::F32) std::memcpy(&out[i * 4], &v[i], 4);
    else {
      const uint16_t h = t == WType::F16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
      std::memcpy(&out[i * 2], &h, 2);
    }
  }
  return out;
}

// The largest error of a batched product y = x w^T against the exact one, relative to sum |w x|.
double worst_error(const std::vector<float>& y, const std::vector<float>& w, const std::vector<float>& x, int64_t rows, int64_t cols) {
  double worst = 0;
  const auto tokens = static_cast<int64_t>(x.size()) / cols;
  for (int64_t tk = 0; tk < tokens; ++tk)
    for (int64_t r = 0; r < rows; ++r) {
      const test::ExactDot e = test::exact_dot(w.data() + r * cols, x.data() + tk * cols, cols);
      worst = std::max(worst, std::fabs(y[static_cast<size_t>(tk * rows + r)] - e.value) / e.magnitude);
    }
  return worst;
}

TEST(Kernels, Bf16TileProductMatchesTheFloatProduct) {
  // Rows over one 128-row block with a partial tile, K over one 512-element panel with a partial
  // one, token counts that leave partial and unpaired token tiles; F16 splits weights and
  // activations into hi and lo parts, BF16 only the activations.
  const int64_t rows = 145, cols = 544;
  for (WType t : {WType::F16, WType::BF16}) {
    if (!kernels::gemm_bf16_available({t, nullptr, rows, cols})) GTEST_SKIP() << "no AMX-BF16 on this CPU: batches use the per-row dot products";
    const auto w = encode(t, random_floats(static_cast<size_t>(rows * cols), 3));
    const kernels::MatrixView m{t, w.data(), rows, cols};
    std::vector<float> wf(static_cast<size_t>(rows * cols));
    kernels::to_f32(t, w.data(), wf.data(), rows * cols);
    for (int64_t tokens : {4, 17, 35}) {
      auto x = random_floats(static_cast<size_t>(tokens * cols), 4);
      for (size_t i = 0; i < x.size(); i += 7) x[i] *= 1000.0f;  // values whose lo part matters at every scale
      std::vector<float> y(static_cast<size_t>(tokens * rows));
      std::vector<uint8_t> scratch;
      kernels::gemm_bf16(m, x.data(), tokens, y.data(), 2, scratch);
      const double worst = worst_error(y, wf, x, rows, cols);
      // Measured: 2.6e-6 of sum |w x| for F16, 1.5e-6 for BF16; without either lo part, 9e-4.
      EXPECT_LE(worst, 1e-5) << kernels::wtype_name(t) << " tokens " << tokens;
    }
  }
}

TEST(Kernels, FloatTileProductMatchesTheExactProduct) {
  // Rows over two 64-row panels and a partial one, K over one 256-element slice and a partial one
  // (not a multiple of 16 either), token counts that leave partial tiles of 6; all three float types.
  const int64_t rows = 145, cols = 300;
  for (WType t : {WType::F32, WType::F16, WType::BF16}) {
    if (!kernels::gemm_f32_available({t, nullptr, rows, cols})) GTEST_SKIP() << "no AVX-512F on this CPU: batches use the per-row dot products";
    const auto w = encode(t, random_floats(static_cast<size_t>(rows * cols), 3));
    const kernels::MatrixView m{t, w.data(), rows, cols};
    std::vector<float> wf(static_cast<size_t>(rows * cols));
    kernels::to_f32(t, w.data(), wf.data(), rows * cols);
    for (int64_t tokens : {1, 16, 35}) {
      const auto x = random_floats(static_cast<size_t>(tokens * cols), 4);
      for (int threads : {1, 2}) {
        std::vector<float> y(static_cast<size_t>(tokens * rows), -1.0f);
        std::vector<uint8_t> scratch;
        kernels::gemm_f32(m, x.data(), tokens, y.data(), threads, scratch);
        const double worst = worst_error(y, wf, x, rows, cols);
        // Float sums of 300 exact products: a few units of 2^-24 of sum |w x|.
        EXPECT_LE(worst, 1e-6) << kernels::wtype_name(t) << " tokens " << tokens << " threads " << threads;
      }
    }
  }
}

TEST(Kernels, DotFastPathsMatchTheReference) {
  if (!kernels::cpu_features().avx2) GTEST_SKIP() << "no AVX2 on this CPU: only the reference path runs";
  for (WType t : {WType::F32, WType::F16, WType::BF16}) {
    for (int64_t n : {1, 7, 8, 9, 31, 32, 33, 100, 128, 1000, 4099}) {
      const auto w = random_floats(static_cast<size_t>(n), 1);
      const auto x = random_floats(static_cast<size_t>(n), 2);
      auto bytes = encode(t, w);
      bytes.insert(bytes.begin(), 0);  // weights mapped from a file may sit at any byte offset
      const float ref = kernels::reference_dot_fn(t)(bytes.data() + 1, x.data(), n);
      const float fast = kernels::dot_fn(t)(bytes.data() + 1, x.data(), n);
      double norm = 0;  // error bound relative to sum |w_i x_i|
      for (int64_t i = 0; i < n; ++i) norm += std::fabs(w[static_cast<size_t>(i)] * x[static_cast<size_t>(i)]);
      EXPECT_LE(std::fabs(ref - fast), 1e-5 * norm + 1e-6) << kernels::wtype_name(t) << " n=" << n;
    }
  }
}

TEST(Kernels, RowConversionsMatchTheScalarDefinitions) {
  for (int64_t n : {1, 7, 8, 9, 100}) {
    std::vector<uint16_t> h(static_cast<size_t>(n) + 1), b(h.size());
    for (size_t i = 0; i < h.size(); ++i) {
      h[i] = static_cast<uint16_t>(0x3c00 + 37 * i);
      b[i] = static_cast<uint16_t>(0xbf80 + 91 * i);
    }
    std::vector<float> out(static_cast<size_t>(n));
    kernels::to_f32(WType::F16, h.data() + 1, out.data(), n);  // odd address on purpose
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[static_cast<size_t>(i)], f16_to_f32(h[static_cast<size_t>(i) + 1]));
    kernels::to_f32(WType::BF16, b.data() + 1, out.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[static_cast<size_t>(i)], bf16_to_f32(b[static_cast<size_t>(i) + 1]));
  }
}

TEST(Kernels, MatmulMatchesTheReferenceAcrossThreadsAndBatches) {
  // Rows of 4,108 take four rows per load of the activations (wider than 16 KiB of floats), in 16-row
  // blocks that leave a single row, and tails of 8 and of 4 elements.
  for (WType t : {WType::F32, WType::F16, WType::BF16})
    for (int64_t cols : {45, 4108}) {
      const int64_t rows = 37;
      const auto w = encode(t, random_floats(rows * cols, 3));
      const kernels::MatrixView m{t, w.data(), rows, cols};
      for (int64_t tokens : {1, 3, 17}) {
        const auto x = random_floats(static_cast<size_t>(tokens * cols), 4);
        std::vector<float> ref(static_cast<size_t>(tokens * rows)), fast(ref.size());
        std::vector<uint8_t> scratch;
        kernels::matmul_reference(m, x.data(), tokens, ref.data());
        for (int threads : {1, 2, 3}) {
          kernels::matmul(m, x.data(), tokens, fast.data(), threads, scratch);
          for (size_t i = 0; i < ref.size(); ++i)
            ASSERT_NEAR(ref[i], fast[i], 1e-4 * std::sqrt(static_cast<double>(cols) / 45))
                << kernels::wtype_name(t) << " cols " << cols << " at " << i;
        }
      }
    }
}

// Rows of `type` holding the given floats, and the floats they decode back to.
struct EncodedRows {
  std::vector<uint8_t> bytes;
  std::vector<float> decoded;
  size_t stride;
};
EncodedRows encode_rows(WType t, const std::vector<float>& v, int64_t n, int64_t hd) {
  EncodedRows e{std::vector<uint8_t>(kernels::row_bytes(t, hd) * static_cast<size_t>(n)), std::vector<float>(v.size()),
                kernels::row_bytes(t, hd)};
  for (int64_t j = 0; j < n; ++j) {
    kernels::from_f32(t, v.data() + j * hd, e.bytes.data() + static_cast<size_t>(j) * e.stride, hd);
    kernels::to_f32(t, e.bytes.data() + static_cast<size_t>(j) * e.stride, e.decoded.data() + j * hd, hd);
  }
  return e;
}

TEST(Kernels, StreamingGroupedAttentionMatchesTwoPassSoftmax) {
  for (WType t : {WType::F32, WType::F16, WType::BF16, WType::Q8_0}) {
    for (int64_t hd : {24, 32, 64, 128}) {  // 24: not a power of two, the per-key path everywhere
      if (t == WType::Q8_0 && hd % 32) continue;  // Q8_0 rows are whole blocks of 32
      for (int64_t group : {1, 4, 7}) {           // 7: sub-groups of 4, 2 and 1 in the row-wise vectors
        for (int64_t n : {1, 2, 63, 64, 65, 129, 1000})
          for (int64_t at_most : {1, 3}) {
            // A tile of 3 tokens at the end of the sequence, causal, as a prefill chunk sees it: with
            // a group of 4, 12 queries, enough for the transposed tiles where the CPU has them; or
            // one token, as decoding sees it, whose 1, 4 or 7 queries take the row-wise vectors.
            const int64_t tokens = std::min<int64_t>(at_most, n);
            const auto q = random_floats(static_cast<size_t>(tokens * group * hd), 5);
            const auto k = encode_rows(t, random_floats(static_cast<size_t>(n * hd), 6), n, hd);
            const auto v = encode_rows(t, random_floats(static_cast<size_t>(n * hd), 7), n, hd);
            std::vector<float> out(q.size()), ref(static_cast<size_t>(hd));
            std::vector<int64_t> begin(static_cast<size_t>(tokens)), end(static_cast<size_t>(tokens));
            for (int64_t i = 0; i < tokens; ++i) {
              end[static_cast<size_t>(i)] = n - tokens + 1 + i;
              begin[static_cast<size_t>(i)] = i == 1 ? end[static_cast<size_t>(i)] / 2 : 0;  // one token with a window
            }
            const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
            kernels::AttentionScratch scratch(tokens * group, hd);
            const kernels::QueryTile tile{q.data(),     out.data(), static_cast<size_t>(group * hd), tokens, group,
                                          begin.data(), end.data()};
            kernels::attend(tile, {t, k.bytes.data(), k.stride}, {t, v.bytes.data(), v.stride}, hd, scale, scratch);
            // Against the definition over the decoded rows.
            for (int64_t i = 0; i < tokens; ++i)
              for (int64_t g = 0; g < group; ++g) {
                const int64_t b = begin[static_cast<size_t>(i)], e = end[static_cast<size_t>(i)];
                const float* qg = q.data() + (i * group + g) * hd;
                kernels::attend_reference(qg, k.decoded.data() + b * hd, v.decoded.data() + b * hd, e - b, hd, scale,
                                          ref.data());
                for (int64_t d = 0; d < hd; ++d)
                  ASSERT_NEAR(ref[static_cast<size_t>(d)], out[static_cast<size_t>((i * group + g) * hd + d)], 2e-5)
                      << kernels::wtype_name(t) << " hd=" << hd << " n=" << n << " tokens " << tokens << " token " << i
                      << " head " << g;
              }
            // A head's output is the same bits whether its group goes through together or it alone
            // (under 8 queries either way, so that both take the same path).
            for (int64_t g = 0; group > 1 && tokens * group < 8 && g < group; ++g) {
              std::vector<float> q_alone(static_cast<size_t>(tokens * hd)), alone(q_alone.size());
              for (int64_t i = 0; i < tokens; ++i)
                std::copy_n(q.begin() + (i * group + g) * hd, hd, q_alone.begin() + i * hd);
              const kernels::QueryTile one{q_alone.data(), alone.data(), static_cast<size_t>(hd), tokens, 1,
                                           begin.data(),   end.data()};
              kernels::attend(one, {t, k.bytes.data(), k.stride}, {t, v.bytes.data(), v.stride}, hd, scale, scratch);
              for (int64_t i = 0; i < tokens; ++i)
                for (int64_t d = 0; d < hd; ++d)
                  ASSERT_EQ(alone[static_cast<size_t>(i * hd + d)], out[static_cast<size_t>((i * group + g) * hd + d)])
                      << kernels::wtype_name(t) << " hd=" << hd << " n=" << n << " head " << g;
            }
          }
      }
    }
  }
}

TEST(Kernels, AttentionSurvivesLargeScoreGaps) {
  // One key dominates completely: no overflow, and the output is its value.
  std::vector<float> q(32, 0.0f), k(32 * 32, 0.0f), v(32 * 32, 1.0f), out(32);
  q[0] = 1000.0f;
  k[5 * 32] = 1000.0f;
  for (int d = 0; d < 32; ++d) v[5 * 32 + d] = 7.0f;
  kernels::AttentionScratch scratch(1, 32);
  const int64_t begin = 0, end = 32;
  const kernels::QueryTile tile{q.data(), out.data(), 32, 1, 1, &begin, &end};
  kernels::attend(tile, {WType::F32, reinterpret_cast<const uint8_t*>(k.data()), 128},
                  {WType::F32, reinterpret_cast<const uint8_t*>(v.data()), 128}, 32, 1.0f, scratch);
  EXPECT_FLOAT_EQ(out[3], 7.0f);
}

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);       // rounds to infinity
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // tie to even
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
}

TEST(Fp16, Bfloat16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
}

TEST(Rope, InverseFrequenciesMatchHf) {
  for (const auto& [name, m] : test::ref()["models"].items()) {
    const ModelConfig c = config_from_hf(test::read_json(test::model_dir(name) + "/config.json"), name);
    const RopeTable t = rope_table(c.rope, c.head_dim, c.context_length);
    const auto expected = m["inv_freq"].get<std::vector<double>>();
    ASSERT_EQ(t.inv_freq.size(), expected.size()) << name;
    for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(t.inv_freq[i] / expected[i], 1.0, 1e-6) << name << " " << i;
    EXPECT_NEAR(t.attention_scaling, m["attention_scaling"].get<double>(), 1e-7) << name;
  }
}

TEST(Rope, LinearAndYarnScaling) {
  RopeConfig r;
  r.theta = 10000;
  const RopeTable plain = rope_table(r, 64, 4096);
  r.scaling = RopeScaling::Linear;
  r.factor = 4;
  const RopeTable linear = rope_table(r, 64, 4096);
  for (size_t i = 0; i < plain.inv_freq.size(); ++i) EXPECT_FLOAT_EQ(linear.inv_freq[i], plain.inv_freq[i] / 4);
  r.scaling = RopeScaling::Yarn;
  r.original_context = 4096;
  const RopeTable yarn = rope_table(r, 64, 16384);
  // High frequencies are kept, low ones interpolated, and cos/sin scaled by 0.1 ln(4) + 1.
  EXPECT_FLOAT_EQ(yarn.inv_freq.front(), plain.inv_freq.front());
  EXPECT_FLOAT_EQ(yarn.inv_freq.back(), plain.inv_freq.back() / 4);
  EXPECT_NEAR(yarn.attention_scaling, 0.1 * std::log(4.0) + 1, 1e-6);
}

}  // namespace
}  // namespace longqa
