// `quantize` and `model random`: the files load, follow llama.cpp's mixes, and the quantized models
// stay within a per-type KL-divergence of the full-precision model.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/quantize.h"
#include "engine/random_model.h"
#include "engine/transformer.h"
#include "kernels/cpu/dot.h"
#include "test_util.h"
#include "util/error.h"

namespace longqa {
namespace {

// Mean over positions of KL(reference || candidate) of the next-token distributions.
double mean_kl(const std::string& reference, const std::string& candidate, const std::vector<int32_t>& ids) {
  auto all_logits = [&](const std::string& path) {
    const auto m = Model::load(path);
    Session s(*m, {.context = static_cast<int64_t>(ids.size()), .threads = 2});
    std::vector<float> logits;
    s.evaluate(ids, &logits, nullptr);
    return std::make_pair(logits, m->config().vocab_size);
  };
  const auto [p, vocab] = all_logits(reference);
  const auto [q, vocab_q] = all_logits(candidate);
  EXPECT_EQ(vocab, vocab_q);
  double total = 0;
  for (size_t t = 0; t < ids.size(); ++t) {
    auto log_softmax = [&](const std::vector<float>& l) {
      const float* row = l.data() + t * static_cast<size_t>(vocab);
      double mx = *std::max_element(row, row + vocab), z = 0;
      for (int64_t i = 0; i < vocab; ++i) z += std::exp(row[i] - mx);
      std::vector<double> out(static_cast<size_t>(vocab));
      for (int64_t i = 0; i < vocab; ++i) out[static_cast<size_t>(i)] = row[i] - mx - std::log(z);
      return out;
    };
    const auto lp = log_softmax(p), lq = log_softmax(q);
    for (size_t i = 0; i < lp.size(); ++i) total += std::exp(lp[i]) * (lp[i] - lq[i]);
  }
  return total / static_cast<double>(ids.size());
}

struct Bound {
  const char* type;
  double kl;
};

// The bounds sit above what each type reaches (see BENCHMARKS.md for the measured values).
const Bound kBounds[] = {{"f16", 1e-5}, {"bf16", 2e-4}, {"q8_0", 2e-4}, {"q6_k", 1e-3},
                         {"q5_k_m", 3e-3}, {"q4_k_m", 1e-2}, {"q4_0", 2e-2}};

TEST(Quantize, RandomTinyModelStaysWithinKlBounds) {
  test::TempDir dir;
  const std::string reference = dir.file("reference.gguf");
  write_random_model(model_shape("tiny"), QuantMix::F16, reference, 7, 2);
  const auto ids = test::read_json(test::data("prompts.json"))["medium"].get<std::vector<int32_t>>();
  for (const Bound& b : kBounds) {
    const std::string out = dir.file(std::string("tiny.") + b.type + ".gguf");
    quantize_gguf(reference, out, parse_quant_mix(b.type), 2);
    const double kl = mean_kl(reference, out, ids);
    EXPECT_LT(kl, b.kl) << b.type;
    RecordProperty(std::string("kl_") + b.type, std::to_string(kl));
  }
}

TEST(Quantize, Q8KvCacheStaysWithinKlBound) {
  test::TempDir dir;
  write_random_model(model_shape("tiny"), QuantMix::F16, dir.file("m.gguf"), 3, 2);  // head size 32
  const auto model = Model::load(dir.file("m.gguf"));
  const auto ids = test::read_json(test::data("prompts.json"))["long"].get<std::vector<int32_t>>();
  std::vector<float> ref, q8;
  Session a(*model, {.context = 300, .threads = 2});
  a.evaluate(ids, &ref, nullptr);
  Session b(*model, {.context = 300, .threads = 2, .kv_type = kernels::WType::Q8_0});
  b.evaluate(ids, &q8, nullptr);
  double kl = 0;
  const size_t v = static_cast<size_t>(model->config().vocab_size);
  auto log_softmax = [&](const std::vector<float>& l, size_t t) {
    const float* r = l.data() + t * v;
    const double mx = *std::max_element(r, r + v);
    double z = 0;
    for (size_t j = 0; j < v; ++j) z += std::exp(r[j] - mx);
    std::vector<double> out(v);
    for (size_t j = 0; j < v; ++j) out[j] = r[j] - mx - std::log(z);
    return out;
  };
  for (size_t t = 0; t < ids.size(); ++t) {
    const auto p = log_softmax(ref, t), q = log_softmax(q8, t);
    for (size_t i = 0; i < v; ++i) kl += std::exp(p[i]) * (p[i] - q[i]);
  }
  kl /= static_cast<double>(ids.size());
  EXPECT_LT(kl, 1e-3);
  RecordProperty("kl_kv_q8_0", std::to_string(kl));
}

TEST(Quantize, FixtureModelsStayClose) {
  // The fixtures' rows of 128 take Q8_0 and Q4_0 (K-quant mixes fall back to Q8_0 there). Their
  // random weights amplify any perturbation: llama.cpp's own Q8_0 of tiny-llama3 moves the logits by
  // up to 0.48, as ours does by 0.50; the bounds are set from that, twice what was measured.
  test::TempDir dir;
  const auto ids = test::read_json(test::data("prompts.json"))["medium"].get<std::vector<int32_t>>();
  const std::string src = test::model_dir("tiny-llama3.f32.gguf");
  for (const char* type : {"q8_0", "q4_0"}) {
    const std::string out = dir.file(std::string("q.") + type + ".gguf");
    quantize_gguf(src, out, parse_quant_mix(type), 2);
    const double kl = mean_kl(src, out, ids);
    EXPECT_LT(kl, std::string(type) == "q8_0" ? 7e-3 : 0.6) << type;
    RecordProperty(std::string("fixture_kl_") + type, std::to_string(kl));
  }
}

TEST(Quantize, MixesFollowLlamaCpp) {
  using T = gguf::TensorType;
  // Q4_K_M: output in Q6_K; attn_v and ffn_down in Q6_K where use_more_bits picks the layer.
  EXPECT_EQ(quant_type_for(QuantMix::Q4_K_M, "output.weight", 4096, -1, 32, false), T::Q6_K);
  EXPECT_EQ(quant_type_for(QuantMix::Q4_K_M, "token_embd.weight", 4096, -1, 32, false), T::Q4_K);
  EXPECT_EQ(quant_type_for(QuantMix::Q4_K_M, "token_embd.weight", 2048, -1, 16, true), T::Q6_K);  // tied
  EXPECT_EQ(quant_type_for(QuantMix::Q4_K_M, "blk.0.attn_v.weight", 4096, 0, 32, false), T::Q6_K);
  EXPECT_EQ(quant_type_for(QuantMix::Q4_K_M, "blk.4.attn_v.weight", 4096, 4, 32, false), T::Q4_K);
  EXPECT_EQ(quant_type_for(QuantMix::Q4_K_M, "blk.6.ffn_down.weight", 14336, 6, 32, false), T::Q6_K);  // (6-4)%3==2
  EXPECT_EQ(quant_type_for(QuantMix::Q4_K_M, "blk.31.ffn_down.weight", 14336, 31, 32, false), T::Q6_K);
  EXPECT_EQ(quant_type_for(QuantMix::Q4_K_M, "blk.5.attn_q.weight", 4096, 5, 32, false), T::Q4_K);
  EXPECT_EQ(quant_type_for(QuantMix::Q5_K_M, "blk.5.attn_q.weight", 4096, 5, 32, false), T::Q5_K);
  EXPECT_EQ(quant_type_for(QuantMix::Q4_0, "output.weight", 4096, -1, 32, false), T::Q6_K);
  EXPECT_EQ(quant_type_for(QuantMix::Q8_0, "output.weight", 4096, -1, 32, false), T::Q8_0);
  EXPECT_EQ(quant_type_for(QuantMix::Q4_K_M, "blk.0.attn_q.weight", 128, 0, 4, false), T::Q8_0);  // rows of 128
}

TEST(Quantize, WritesTheMixAndKeepsVectorsF32) {
  test::TempDir dir;
  write_random_model(model_shape("tiny"), QuantMix::Q4_K_M, dir.file("m.gguf"), 1, 2);
  gguf::File f(dir.file("m.gguf"));
  EXPECT_EQ(f.get_int("general.file_type"), 15);
  // With 4 layers use_more_bits picks layers 2 and 3.
  EXPECT_EQ(f.find_tensor("blk.1.attn_v.weight")->type, gguf::TensorType::Q4_K);
  EXPECT_EQ(f.find_tensor("blk.2.attn_v.weight")->type, gguf::TensorType::Q6_K);
  EXPECT_EQ(f.find_tensor("blk.3.ffn_down.weight")->type, gguf::TensorType::Q6_K);
  EXPECT_EQ(f.find_tensor("blk.1.ffn_up.weight")->type, gguf::TensorType::Q4_K);
  EXPECT_EQ(f.find_tensor("blk.1.attn_norm.weight")->type, gguf::TensorType::F32);
  EXPECT_EQ(f.find_tensor("output.weight")->type, gguf::TensorType::Q6_K);
  EXPECT_NO_THROW(Model::load(dir.file("m.gguf")));
}

TEST(Quantize, Refusals) {
  test::TempDir dir;
  EXPECT_THROW(parse_quant_mix("q3_k_s"), Error);
  EXPECT_THROW(model_shape("llama3-405b"), Error);
  EXPECT_THROW(quantize_gguf(dir.file("missing.gguf"), dir.file("out.gguf"), QuantMix::Q8_0, 1), Error);
  const std::string src = test::model_dir("tiny-llama3.f32.gguf");
  EXPECT_THROW(quantize_gguf(src, src, QuantMix::Q8_0, 1), Error);
  EXPECT_FALSE(std::filesystem::exists(dir.file("out.gguf")));
}

TEST(Cli, BenchPrintsJson) {
  test::TempDir dir;
  const auto made = test::run_longqa("model random --shape tiny --type q4_k_m --out " + dir.file("m.gguf"));
  ASSERT_EQ(made.status, 0) << made.err;
  const auto r = test::run_longqa("bench -m " + dir.file("m.gguf") + " -p 32 -n 8 -r 1 -t 2 --depth 16 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"pp_tok_s", "tg_tok_s", "gb_s", "gflop_s", "peak_rss_mb"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_GT(j[key].get<double>(), 0) << key;
  }
  // The work behind GFLOP/s: per prompt token, two flops per weight of every layer matrix, the output
  // matrix once per prompt (only the last token's logits are computed), and attention over the cache.
  const auto model = Model::load(dir.file("m.gguf"));
  const ModelConfig& c = model->config();
  const Weights& w = model->weights();
  double layer_params = 0;
  for (const LayerWeights& l : w.layers)
    for (const kernels::MatrixView* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      layer_params += static_cast<double>(m->rows * m->cols);
  const double output_params = static_cast<double>(w.output.rows * w.output.cols);
  const double per_token =
      2 * layer_params + 2 * output_params / 32 + 4.0 * c.n_layers * c.n_heads * c.head_dim * (16 + 32 / 2);
  EXPECT_NEAR(j["gflop_s"].get<double>() / j["pp_tok_s"].get<double>() * 1e9, per_token, 0.01 * per_token);
}

}  // namespace
}  // namespace longqa
