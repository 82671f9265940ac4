// Block formats: hand-built blocks decode as ggml defines them, quantization error stays within
// per-type bounds, integer dot products equal the dot of the dequantized rows, and the AVX2 paths
// equal the scalar references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/dot.h"
#include "kernels/cpu/gemm_q.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant.h"
#include "test_util.h"
#include "util/fp16.h"

namespace longqa::kernels {
namespace {

const WType kQuantTypes[] = {WType::Q8_0, WType::Q4_0, WType::Q4_K, WType::Q5_K, WType::Q6_K};

std::vector<float> random_row(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<uint8_t> quantize(WType t, const std::vector<float>& x) {
  std::vector<uint8_t> out(row_bytes(t, static_cast<int64_t>(x.size())));
  const auto n = static_cast<int64_t>(x.size());
  switch (t) {
    case WType::Q8_0: reference::quantize_q8_0(x.data(), reinterpret_cast<BlockQ8_0*>(out.data()), n); break;
    case WType::Q4_0: reference::quantize_q4_0(x.data(), reinterpret_cast<BlockQ4_0*>(out.data()), n); break;
    case WType::Q4_K: reference::quantize_q4_k(x.data(), reinterpret_cast<BlockQ4_K*>(out.data()), n); break;
    case WType::Q5_K: reference::quantize_q5_k(x.data(), reinterpret_cast<BlockQ5_K*>(out.data()), n); break;
    case WType::Q6_K: reference::quantize_q6_k(x.data(), reinterpret_cast<BlockQ6_K*>(out.data()), n); break;
    default: ADD_FAILURE();
  }
  return out;
}

TEST(Quant, HandBuiltBlocksDecodeAsGgmlDefinesThem) {
  BlockQ4_0 q4{};
  q4.d = f32_to_f16(0.5f);
  q4.qs[0] = 0x2F;  // element 0: 15 - 8 = 7; element 16: 2 - 8 = -6
  float y[256];
  reference::dequantize_q4_0(&q4, y, 32);
  EXPECT_EQ(y[0], 3.5f);
  EXPECT_EQ(y[16], -3.0f);
  EXPECT_EQ(y[1], -4.0f);  // nibble 0 -> -8

  BlockQ4_K k4{};
  k4.d = f32_to_f16(1.0f);
  k4.dmin = f32_to_f16(0.5f);
  k4.scales[1] = 3;                  // sub-block 1 scale 3
  k4.scales[5] = 4;                  // sub-block 1 min 4
  k4.scales[8] = 0x21;               // sub-block 4: scale low 4 bits 1, min low 4 bits 2
  k4.scales[0] = 1 << 6;             // sub-block 4: scale high bits 01 -> scale 17
  k4.scales[4] = 2 << 6;             // sub-block 4: min high bits 10 -> min 34
  k4.qs[5] = 0x90;                   // element 32 + 5 (sub-block 1) = 9; element 5 (sub-block 0) = 0
  k4.qs[64 + 7] = 0x0C;              // element 128 + 7 (sub-block 4) = 12
  reference::dequantize_q4_k(&k4, y, 256);
  EXPECT_EQ(y[37], 3 * 9 - 0.5f * 4);
  EXPECT_EQ(y[135], 17 * 12 - 0.5f * 34);
  EXPECT_EQ(y[5], 0.0f);

  BlockQ6_K k6{};
  k6.d = f32_to_f16(2.0f);
  k6.scales[0] = -3;
  k6.scales[6] = 5;   // elements 96..111
  k6.ql[0] = 0x1F;    // element 0 low 4 bits 15; element 64 low bits 1
  k6.qh[0] = 0x02;    // element 0 high bits 2 -> level 47 -> 15
  k6.ql[33] = 0x30;   // element 97 low bits 3
  k6.qh[1] = 0xC0;    // element 97 high bits 3 -> level 51 -> 19
  reference::dequantize_q6_k(&k6, y, 256);
  EXPECT_EQ(y[0], 2.0f * -3 * 15);
  EXPECT_EQ(y[97], 2.0f * 5 * 19);
}

TEST(Quant, ErrorStaysWithinPerTypeBounds) {
  // RMS error relative to the RMS of N(0, 1) data; the bounds sit above what each format reaches.
  const std::vector<std::pair<WType, double>> bounds = {
      {WType::Q8_0, 0.006}, {WType::Q6_K, 0.02}, {WType::Q5_K, 0.04}, {WType::Q4_K, 0.08}, {WType::Q4_0, 0.12}};
  const auto x = random_row(256 * 64, 11);
  for (const auto& [t, bound] : bounds) {
    const auto q = quantize(t, x);
    std::vector<float> back(x.size());
    to_f32(t, q.data(), back.data(), static_cast<int64_t>(x.size()));
    double err = 0;
    for (size_t i = 0; i < x.size(); ++i) err += (x[i] - back[i]) * (x[i] - back[i]);
    err = std::sqrt(err / static_cast<double>(x.size()));
    EXPECT_LT(err, bound) << wtype_name(t);
    RecordProperty(std::string("rms_error_") + wtype_name(t), std::to_string(err));
  }
}

TEST(Quant, IntegerDotEqualsTheDotOfDequantizedRows) {
  for (WType t : kQuantTypes) {
    for (int64_t n : {256, 512, 2048}) {
      const auto w = quantize(t, random_row(n, 1));
      const auto x = random_row(n, 2);
      std::vector<uint8_t> act(act_row_bytes(t, n));
      quantize_activation(t, x.data(), act.data(), n);
      // Dequantize both sides and take a float dot: the integer path must agree to rounding.
      std::vector<float> wf(static_cast<size_t>(n)), xf(static_cast<size_t>(n));
      to_f32(t, w.data(), wf.data(), n);
      if (wtype_info(t).act == ActType::Q8_0) reference::dequantize_q8_0(reinterpret_cast<const BlockQ8_0*>(act.data()), xf.data(), n);
      else {
        const auto* b = reinterpret_cast<const BlockQ8_K*>(act.data());
        for (int64_t i = 0; i < n; ++i) xf[static_cast<size_t>(i)] = b[i / kQKK].d * b[i / kQKK].qs[i % kQKK];
      }
      double expected = 0, magnitude = 0;
      for (int64_t i = 0; i < n; ++i) {
        expected += static_cast<double>(wf[static_cast<size_t>(i)]) * xf[static_cast<size_t>(i)];
        magnitude += std::fabs(static_cast<double>(wf[static_cast<size_t>(i)]) * xf[static_cast<size_t>(i)]);
      }
      const float got = reference_dot_fn(t)(w.data(), act.data(), n);
      EXPECT_NEAR(got, expected, 1e-5 * magnitude + 1e-6) << wtype_name(t) << " n=" << n;
    }
  }
}

// Every fast dot product this CPU can run for type t, by name: dot_fn picks one, the tests check all.
std::vector<std::pair<const char*, DotFn>> fast_dots(WType t) {
  const CpuFeatures& cpu = cpu_features();
  std::vector<std::pair<const char*, DotFn>> out;
  if (!(cpu.avx2 && cpu.fma && cpu.f16c)) return out;
  switch (t) {
    case WType::Q8_0: out.emplace_back("avx2", avx2::dot_q8_0); break;
    case WType::Q4_0: out.emplace_back("avx2", avx2::dot_q4_0); break;
    case WType::Q4_K: out.emplace_back("avx2", avx2::dot_q4_k); break;
    case WType::Q5_K: out.emplace_back("avx2", avx2::dot_q5_k); break;
    case WType::Q6_K: out.emplace_back("avx2", avx2::dot_q6_k); break;
    default: break;
  }
  if (!(cpu.avx512vl && cpu.avx512bw && cpu.avx512vnni)) return out;
  switch (t) {
    case WType::Q8_0: out.emplace_back("vnni", vnni::dot_q8_0); break;
    case WType::Q4_0: out.emplace_back("vnni", vnni::dot_q4_0); break;
    case WType::Q4_K: out.emplace_back("vnni", vnni::dot_q4_k); break;
    case WType::Q5_K: out.emplace_back("vnni", vnni::dot_q5_k); break;
    case WType::Q6_K: out.emplace_back("vnni", vnni::dot_q6_k); break;
    default: break;
  }
  return out;
}

TEST(Quant, FastDotsEqualTheReference) {
  if (!cpu_features().avx2) GTEST_SKIP() << "no AVX2 on this CPU: only the reference path runs";
  for (WType t : kQuantTypes) {
    // For 32-element blocks also lengths that leave 1, 2 and 3 blocks after the kernels' groups of 8
    // and an odd block after their pairs.
    const auto lengths = wtype_info(t).block == 32 ? std::vector<int64_t>{32, 96, 256, 608, 768, 4096}
                                                   : std::vector<int64_t>{256, 768, 4096};
    for (int64_t n : lengths) {
      auto w = quantize(t, random_row(n, 3));
      w.insert(w.begin(), 0);  // rows may start at any byte offset
      const auto x = random_row(n, 4);
      std::vector<uint8_t> act(act_row_bytes(t, n) + 1);
      quantize_activation(t, x.data(), act.data() + 1, n);
      const float ref = reference_dot_fn(t)(w.data() + 1, act.data() + 1, n);
      for (const auto& [name, dot] : fast_dots(t))
        EXPECT_NEAR(dot(w.data() + 1, act.data() + 1, n), ref, 1e-5 * std::fabs(ref) + 1e-4) << wtype_name(t) << " " << name << " n=" << n;
    }
  }
}

TEST(Quant, DecodeProductsEqualTheReference) {
  // Single tokens and small batches go row by row through dot_fn, in blocks of 16 rows shared among the
  // threads: 37 rows leave a partial block, the odd byte offset leaves every row unaligned.
  for (WType t : kQuantTypes) {
    const int64_t rows = 37, cols = 512;
    std::vector<uint8_t> w(1);
    for (int64_t r = 0; r < rows; ++r) {
      const auto row = quantize(t, random_row(cols, 200 + static_cast<uint32_t>(r)));
      w.insert(w.end(), row.begin(), row.end());
    }
    const MatrixView m{t, w.data() + 1, rows, cols};
    for (int64_t tokens : {1, 3}) {
      const auto x = random_row(tokens * cols, 11);
      std::vector<float> ref(static_cast<size_t>(tokens * rows)), fast(ref.size());
      std::vector<uint8_t> scratch;
      matmul_reference(m, x.data(), tokens, ref.data());
      for (int threads : {1, 2}) {
        matmul(m, x.data(), tokens, fast.data(), threads, scratch);
        for (size_t i = 0; i < ref.size(); ++i)
          ASSERT_NEAR(fast[i], ref[i], 1e-5 * std::fabs(ref[i]) + 1e-4) << wtype_name(t) << " tokens " << tokens << " at " << i;
      }
    }
  }
}

TEST(Quant, ProductsOfOneInputEqualSeparateProducts) {
  // A layer's Q, K and V (and gate and up) go through matmul_same_input: one pass over the rows of all
  // of them, partial blocks included (37 and 50 rows), or one matrix at a time where the types differ
  // (Q4_K_M keeps V in Q6_K) or the batch takes the tiled path (8 tokens). Same dot, same bits.
  const int64_t cols = 512;
  const int64_t rows[] = {37, 16, 50};
  for (const WType v_type : {WType::Q4_K, WType::Q6_K}) {
    std::vector<std::vector<uint8_t>> w(3);
    std::vector<MatrixView> ms;
    for (size_t i = 0; i < 3; ++i) {
      const WType t = i == 2 ? v_type : WType::Q4_K;
      for (int64_t r = 0; r < rows[i]; ++r) {
        const auto row = quantize(t, random_row(cols, 300 + static_cast<uint32_t>(i * 100 + r)));
        w[i].insert(w[i].end(), row.begin(), row.end());
      }
      ms.push_back({t, w[i].data(), rows[i], cols});
    }
    for (int64_t tokens : {1, 3, 8}) {
      const auto x = random_row(tokens * cols, 12);
      for (int threads : {1, 2}) {
        std::vector<std::vector<float>> together(3), alone(3);
        std::vector<float*> outs;
        std::vector<uint8_t> scratch;
        for (size_t i = 0; i < 3; ++i) {
          together[i].assign(static_cast<size_t>(tokens * rows[i]), -1.0f);
          alone[i].resize(together[i].size());
          outs.push_back(together[i].data());
          matmul(ms[i], x.data(), tokens, alone[i].data(), threads, scratch);
        }
        matmul_same_input(ms, outs, x.data(), tokens, threads, scratch);
        for (size_t i = 0; i < 3; ++i)
          ASSERT_EQ(together[i], alone[i]) << "matrix " << i << ", V " << wtype_name(v_type) << ", " << tokens << " tokens, " << threads << " threads";
      }
    }
  }
}

TEST(Quant, VectorisedActivationPackingEqualsTheScalar) {
  if (!gemm_kernel_available(GemmKernel::Vnni)) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  const int64_t blocks = 24;
  auto x = random_row(blocks * 32, 5);
  for (int l = 0; l < 32; ++l) x[32 + l] = 0;  // a block of zeros: scale 0
  x[70] = 1e4f;                                 // and one dominated by a single value
  std::vector<int8_t> q[2] = {std::vector<int8_t>(blocks * 32), std::vector<int8_t>(blocks * 32)};
  std::vector<float> d[2] = {std::vector<float>(blocks), std::vector<float>(blocks)};
  std::vector<float> sums[2] = {std::vector<float>(blocks * 2), std::vector<float>(blocks * 2)};
  pack_activation(x.data(), blocks, q[0].data(), d[0].data(), sums[0].data());
  vnni::pack_activation(x.data(), blocks, q[1].data(), d[1].data(), sums[1].data());
  EXPECT_EQ(q[0], q[1]);
  EXPECT_EQ(d[0], d[1]);
  EXPECT_EQ(sums[0], sums[1]);
}

TEST(Quant, TiledInt8ProductMatchesTheFloatProduct) {
  if (!gemm_kernel_available(GemmKernel::Vnni)) GTEST_SKIP() << "no AVX-512 VNNI on this CPU: batches use the per-row dot products";
  // Partial row and token tiles of both kernels (4 x 4, 16 x 16), and for Q8_0 and Q4_0 a row length
  // that is not a multiple of 64.
  for (WType t : kQuantTypes)
    for (GemmKernel kernel : {GemmKernel::Vnni, GemmKernel::Amx}) {
      if (!gemm_kernel_available(kernel)) continue;
      const int64_t rows = 37, cols = wtype_info(t).block == 32 ? 544 : 512;
      std::vector<uint8_t> w;
      for (int64_t r = 0; r < rows; ++r) {
        const auto row = quantize(t, random_row(cols, 100 + static_cast<uint32_t>(r)));
        w.insert(w.end(), row.begin(), row.end());
      }
      const MatrixView m{t, w.data(), rows, cols};
      std::vector<float> wf(static_cast<size_t>(rows * cols));
      for (int64_t r = 0; r < rows; ++r) to_f32(t, m.row(r), wf.data() + r * cols, cols);
      for (int64_t tokens : {4, 5, 7, 35}) {
        const auto x = random_row(tokens * cols, 9);
        std::vector<float> y(static_cast<size_t>(tokens * rows));
        std::vector<uint8_t> scratch;
        gemm_q(m, x.data(), tokens, y.data(), 2, scratch, kernel);
        for (int64_t tk = 0; tk < tokens; ++tk)
          for (int64_t r = 0; r < rows; ++r) {
            const test::ExactDot e = test::exact_dot(wf.data() + r * cols, x.data() + tk * cols, cols);
            // Only the activations' 8-bit rounding separates the two.
            ASSERT_NEAR(y[static_cast<size_t>(tk * rows + r)], e.value, 3e-3 * e.magnitude)
                << wtype_name(t) << (kernel == GemmKernel::Amx ? " amx" : " vnni") << " row " << r << " token " << tk;
          }
      }
    }
}

TEST(Quant, InterleavedQ4_0RowsComputeWhatTheRowsDo) {
  // 40 rows: five groups of 8, the last in a partial block of 16 rows; 19 blocks a row leave the
  // kernel's pairs of blocks an odd one. The interleaved copy is made by hand so that the reference
  // path runs on every CPU; where the CPU has the decode kernel the loader's form must agree.
  const int64_t rows = 40, cols = 19 * 32;
  std::vector<uint8_t> w(1);  // rows may start at any byte offset
  for (int64_t r = 0; r < rows; ++r) {
    const auto row = quantize(WType::Q4_0, random_row(cols, 400 + static_cast<uint32_t>(r)));
    w.insert(w.end(), row.begin(), row.end());
  }
  const MatrixView plain{WType::Q4_0, w.data() + 1, rows, cols};
  std::vector<uint8_t> wi(w.size());
  for (int64_t r = 0; r < rows; r += 8)
    reference::interleave_q4_0(plain.row(r), plain.row_stride(), cols / 32,
                               reinterpret_cast<BlockQ4_0x8*>(wi.data() + 1 + r * plain.row_stride()));
  const MatrixView inter{WType::Q4_0x8, wi.data() + 1, rows, cols};
  if (decode_layout(WType::Q4_0, rows) == WType::Q4_0x8) {
    std::vector<uint8_t> in_place = w;
    const MatrixView made = interleave_for_decode({WType::Q4_0, in_place.data() + 1, rows, cols}, in_place.data() + 1);
    EXPECT_EQ(made.type, WType::Q4_0x8);
    EXPECT_EQ(in_place, wi);
  }
  EXPECT_EQ(decode_layout(WType::Q4_0, 36), WType::Q4_0);  // rows not a multiple of 8 stay as they are
  EXPECT_EQ(decode_layout(WType::Q4_K, rows), WType::Q4_K);

  // Taking a row back out gives its bytes; the matrix converts to the same floats.
  std::vector<BlockQ4_0> back(static_cast<size_t>(cols / 32));
  for (int64_t r = 0; r < rows; ++r) {
    reference::deinterleave_q4_0(static_cast<const BlockQ4_0x8*>(inter.row(r - r % 8)), cols / 32,
                                 static_cast<int>(r % 8), back.data());
    ASSERT_EQ(std::memcmp(back.data(), plain.row(r), plain.row_stride()), 0) << "row " << r;
  }
  std::vector<float> f_plain(static_cast<size_t>(rows * cols)), f_inter(f_plain.size());
  to_f32(plain, f_plain.data());
  to_f32(inter, f_inter.data());
  EXPECT_EQ(f_plain, f_inter);
  EXPECT_THROW(to_f32(WType::Q4_0x8, wi.data(), f_inter.data(), cols), std::logic_error);

  // Each kernel this CPU has, group by group (matmul below takes the fastest).
  std::vector<std::pair<const char*, GroupDotFn>> kernels;
  if (cpu_features().avx2 && cpu_features().fma && cpu_features().f16c) kernels.emplace_back("avx2", avx2::dot_q4_0x8);
  if (gemm_kernel_available(GemmKernel::Vnni)) kernels.emplace_back("vnni", vnni::dot_q4_0x8);
  {
    const auto x = random_row(cols, 14);
    std::vector<uint8_t> act(act_row_bytes(WType::Q4_0x8, cols) + 1);  // activations at an odd offset too
    quantize_activation(WType::Q4_0x8, x.data(), act.data() + 1, cols);
    for (int64_t r = 0; r < rows; r += 8) {
      float ref[8], fast[8];
      reference::dot_q4_0x8(inter.row(r), act.data() + 1, cols, ref);
      for (const auto& [name, dot] : kernels) {
        dot(inter.row(r), act.data() + 1, cols, fast);
        for (int i = 0; i < 8; ++i)
          ASSERT_NEAR(fast[i], ref[i], 1e-5 * std::fabs(ref[i]) + 1e-4) << name << " row " << r + i;
      }
    }
  }
  for (int64_t tokens : {1, 3, 4, 35}) {
    const auto x = random_row(tokens * cols, 13);
    std::vector<float> ref(static_cast<size_t>(tokens * rows)), ref_inter(ref.size()), fast(ref.size()),
        fast_plain(ref.size());
    std::vector<uint8_t> scratch;
    matmul_reference(plain, x.data(), tokens, ref.data());
    matmul_reference(inter, x.data(), tokens, ref_inter.data());
    ASSERT_EQ(ref, ref_inter) << tokens << " tokens";  // the reference takes each row's blocks in order
    for (int threads : {1, 2}) {
      matmul(inter, x.data(), tokens, fast.data(), threads, scratch);
      if (tokens >= 4 && gemm_q_available(WType::Q4_0)) {  // batches: the tiles unpack the same levels
        matmul(plain, x.data(), tokens, fast_plain.data(), threads, scratch);
        ASSERT_EQ(fast, fast_plain) << tokens << " tokens, " << threads << " threads";
        continue;
      }
      for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(fast[i], ref[i], 1e-5 * std::fabs(ref[i]) + 1e-4)
            << tokens << " tokens, " << threads << " threads, at " << i;
    }
  }
}

TEST(Quant, ZeroRowsStayZero) {
  for (WType t : kQuantTypes) {
    const std::vector<float> zeros(256, 0.0f);
    const auto q = quantize(t, zeros);
    std::vector<float> back(256, 1.0f);
    to_f32(t, q.data(), back.data(), 256);
    for (float v : back) ASSERT_EQ(v, 0.0f) << wtype_name(t);
  }
}

}  // namespace
}  // namespace longqa::kernels
