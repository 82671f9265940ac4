// Golden tests: every fixture model, loaded from its HF directory, from the fixture GGUF file where
// one exists, and from a GGUF written by `convert`, must reproduce HF transformers' outputs in
// ref.json: logits within 1e-3, the argmax at every position, and the pooled hidden state within 1e-4.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "engine/convert.h"
#include "engine/model.h"
#include "engine/quantize.h"
#include "engine/transformer.h"
#include "test_util.h"
#include "util/error.h"

namespace longqa {
namespace {

const std::vector<std::string> kModels = {"tiny-llama3", "tiny-llama3-bf16", "tiny-chatqa2",
                                          "tiny-llama31", "tiny-mistral",     "tiny-qwen2"};

// Converted GGUF files, made once for the whole suite.
class Converted {
 public:
  static const std::string& path(const std::string& model, const std::string& type) {
    static Converted instance;
    auto key = model + "." + type;
    auto it = instance.paths_.find(key);
    if (it == instance.paths_.end()) {
      const std::string p = instance.dir_.file(key + ".gguf");
      convert_hf_to_gguf(test::model_dir(model), p, parse_convert_type(type));
      it = instance.paths_.emplace(key, p).first;
    }
    return it->second;
  }

 private:
  test::TempDir dir_;
  std::map<std::string, std::string> paths_;
};

struct Case {
  std::string model;
  std::string source;  // "hf", "gguf" (fixture file) or "convert" (f32 GGUF written by longqa)
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.model << " from " << c.source; }

std::string case_path(const Case& c) {
  if (c.source == "hf") return test::model_dir(c.model);
  if (c.source == "gguf") return test::model_dir(c.model + ".f32.gguf");
  return Converted::path(c.model, "f32");
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const auto& m : kModels) {
    cases.push_back({m, "hf"});
    if (std::filesystem::exists(test::model_dir(m + ".f32.gguf"))) cases.push_back({m, "gguf"});
    cases.push_back({m, "convert"});
  }
  return cases;
}

double max_abs_diff(const float* a, const std::vector<double>& b) {
  double d = 0;
  for (size_t i = 0; i < b.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

class Golden : public testing::TestWithParam<Case> {};

TEST_P(Golden, MatchesTransformers) {
  const Case& c = GetParam();
  const auto model = Model::load(case_path(c));
  const auto prompts = test::read_json(test::data("prompts.json"));
  const auto& ref = test::ref()["models"][c.model];
  const size_t vocab = static_cast<size_t>(model->config().vocab_size);
  for (const char* prompt : {"short", "medium", "long"}) {
    SCOPED_TRACE(prompt);
    const auto ids = prompts[prompt].get<std::vector<int32_t>>();
    const auto& r = ref[prompt];
    Session s(*model, {.context = static_cast<int64_t>(ids.size()), .batch = 64, .threads = 2});
    std::vector<float> logits, hidden;
    s.evaluate(ids, &logits, &hidden);
    ASSERT_EQ(logits.size(), ids.size() * vocab);

    EXPECT_LE(max_abs_diff(logits.data() + (ids.size() - 1) * vocab, r["last_logits"].get<std::vector<double>>()), 1e-3);
    if (r.contains("all_logits")) {
      const auto& all = r["all_logits"];
      ASSERT_EQ(all.size(), ids.size());
      for (size_t t = 0; t < ids.size(); ++t)
        EXPECT_LE(max_abs_diff(logits.data() + t * vocab, all[t].get<std::vector<double>>()), 1e-3) << "position " << t;
    }
    const auto argmax = r["argmax"].get<std::vector<int32_t>>();
    ASSERT_EQ(argmax.size(), ids.size());
    for (size_t t = 0; t < ids.size(); ++t) {
      const float* row = logits.data() + t * vocab;
      std::vector<float> sorted(row, row + vocab);
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<>());
      if (sorted[0] - sorted[1] < 1e-4) continue;  // a near tie: either answer is right
      EXPECT_EQ(std::max_element(row, row + vocab) - row, argmax[t]) << "position " << t;
    }
    const auto expected_hidden = r["last_hidden_l2norm"].get<std::vector<double>>();
    const size_t h = expected_hidden.size();
    std::vector<float> last(hidden.end() - static_cast<ptrdiff_t>(h), hidden.end());
    double norm = 0;
    for (float x : last) norm += static_cast<double>(x) * x;
    for (float& x : last) x = static_cast<float>(x / std::sqrt(norm));
    EXPECT_LE(max_abs_diff(last.data(), expected_hidden), 1e-4);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Golden, testing::ValuesIn(all_cases()), [](const auto& param_info) {
  std::string name = param_info.param.model + "_" + param_info.param.source;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

// Chunked prefill, token-by-token decode and one big batch compute the same thing.
TEST(Session, ChunkingDoesNotChangeTheResult) {
  const auto model = Model::load(test::model_dir("tiny-mistral"));  // sliding window crosses chunk edges
  const auto ids = test::read_json(test::data("prompts.json"))["long"].get<std::vector<int32_t>>();
  Session a(*model, {.context = 400, .batch = 512, .threads = 1});
  a.decode(ids);
  const auto la = a.decode(std::vector<int32_t>{7});
  const std::vector<float> ref(la.begin(), la.end());
  for (int64_t batch : {1, 7, 33}) {
    Session b(*model, {.context = 400, .batch = batch, .threads = 2});
    b.decode(std::span(ids).first(100));
    b.decode(std::span(ids).subspan(100));
    const auto lb = b.decode(std::vector<int32_t>{7});
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(lb[i], ref[i], 1e-4) << "batch " << batch;
  }
}

TEST(Session, RewindRecomputesTheSameLogits) {
  const auto model = Model::load(test::model_dir("tiny-llama3"));
  const std::vector<int32_t> ids = {510, 1, 2, 3, 4};
  Session t(*model, {.context = 32});
  const auto l1 = t.decode(ids);
  const std::vector<float> a(l1.begin(), l1.end());
  t.decode(std::vector<int32_t>{9, 9, 9});
  t.rewind(4);
  const auto l2 = t.decode(std::vector<int32_t>{4});
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(l2[i], a[i], 1e-5);
  EXPECT_THROW(t.rewind(6), Error);
}

TEST(Session, RefusesWhatDoesNotFit) {
  const auto model = Model::load(test::model_dir("tiny-llama3"));
  Session s(*model, {.context = 4});
  EXPECT_THROW(s.decode(std::vector<int32_t>{1, 2, 3, 4, 5}), Error);
  EXPECT_THROW(s.decode(std::vector<int32_t>{512}), Error);
  EXPECT_THROW(s.decode(std::vector<int32_t>{-1}), Error);
  EXPECT_THROW(s.decode(std::vector<int32_t>{}), Error);
  EXPECT_EQ(s.position(), 0);  // nothing was half-evaluated
  EXPECT_THROW(Session(*model, {.context = 1 << 20}), Error);  // beyond the model's 131072
}

TEST(Session, FullTrainedContextIsAllocatedOnRequest) {
  const auto model = Model::load(test::model_dir("tiny-chatqa2"));
  Session s(*model, {.context = 131072});
  EXPECT_EQ(s.capacity(), 131072);
  EXPECT_EQ(s.cache_bytes(), size_t{2} * 4 * 2 * 131072 * 16 * sizeof(float));
}

TEST(Session, HalfPrecisionKvCachesStayClose) {
  const auto model = Model::load(test::model_dir("tiny-llama3"));
  const auto ids = test::read_json(test::data("prompts.json"))["long"].get<std::vector<int32_t>>();
  const auto ref = test::ref()["models"]["tiny-llama3"]["long"]["last_logits"].get<std::vector<double>>();
  for (const auto& [type, bound] : {std::pair{kernels::WType::F16, 1e-2}, std::pair{kernels::WType::BF16, 5e-2}}) {
    Session s(*model, {.context = 300, .threads = 2, .kv_type = type});
    EXPECT_LE(max_abs_diff(s.decode(ids).data(), ref), bound) << kernels::wtype_name(type);
  }
  // Q8_0 rows need a head size divisible by 32; the fixtures' is 16.
  EXPECT_THROW(Session(*model, {.context = 8, .kv_type = kernels::WType::Q8_0}), Error);
  EXPECT_THROW(Session(*model, {.context = 8, .kv_type = kernels::WType::Q4_K}), Error);
}

// Weights read into huge-page memory (the default) or mapped: the same bytes, the same logits.
TEST(Session, MappedWeightsGiveTheSameLogits) {
  const auto ids = test::read_json(test::data("prompts.json"))["medium"].get<std::vector<int32_t>>();
  for (const std::string& path : {test::model_dir("tiny-llama3"), test::model_dir("tiny-llama3.f32.gguf")}) {
    SCOPED_TRACE(path);
    std::vector<float> logits[2];
    for (FileResidency r : {FileResidency::Mapped, FileResidency::HugePages}) {
      const auto model = Model::load(path, {.rope = {}, .weights = r});
      Session s(*model, {.context = static_cast<int64_t>(ids.size()), .batch = 64, .threads = 2});
      s.evaluate(ids, &logits[r == FileResidency::HugePages], nullptr);
    }
    ASSERT_FALSE(logits[0].empty());
    EXPECT_EQ(logits[0], logits[1]);
  }
}

// Q4_0 layers read into memory are interleaved for the decode kernel where the CPU has it (mapped
// ones stay as the file has them): token by token, the logits stay close. Not bit for bit: the rows'
// sums run in another float order, and an activation that lands that much nearer a rounding boundary
// of the next layer's 8-bit quantization moves by a level (the fixtures' random weights amplify it).
TEST(Session, InterleavedQ4_0WeightsGiveTheLogitsOfTheFileLayout) {
  const auto ids = test::read_json(test::data("prompts.json"))["short"].get<std::vector<int32_t>>();
  test::TempDir dir;
  const std::string path = dir.file("q4_0.gguf");
  quantize_gguf(test::model_dir("tiny-llama3.f32.gguf"), path, parse_quant_mix("q4_0"), 2);
  std::vector<float> logits[2];
  for (FileResidency r : {FileResidency::Mapped, FileResidency::HugePages}) {
    const auto model = Model::load(path, {.rope = {}, .weights = r});
    const kernels::MatrixView& wq = model->weights().layers[0].wq;
    EXPECT_EQ(wq.type, r == FileResidency::Mapped ? kernels::WType::Q4_0
                                                  : kernels::decode_layout(kernels::WType::Q4_0, wq.rows));
    Session s(*model, {.context = static_cast<int64_t>(ids.size()), .batch = 1, .threads = 2});
    s.evaluate(ids, &logits[r == FileResidency::HugePages], nullptr);
  }
  ASSERT_FALSE(logits[0].empty());
  EXPECT_LE(max_abs_diff(logits[1].data(), std::vector<double>(logits[0].begin(), logits[0].end())), 2e-2);
}

TEST(Convert, HalfPrecisionFilesStayClose) {
  const auto ids = test::read_json(test::data("prompts.json"))["medium"].get<std::vector<int32_t>>();
  for (const std::string& m : {std::string("tiny-llama3"), std::string("tiny-qwen2")}) {
    const auto ref = test::ref()["models"][m]["medium"]["last_logits"].get<std::vector<double>>();
    for (const char* type : {"f16", "bf16"}) {
      const auto model = Model::load(Converted::path(m, type));
      Session s(*model, {.context = 128});
      const auto l = s.decode(ids);
      EXPECT_LE(max_abs_diff(l.data(), ref), std::string(type) == "f16" ? 2e-2 : 5e-2) << m << " " << type;
    }
  }
  // bf16 weights written as bf16 lose nothing.
  const auto model = Model::load(Converted::path("tiny-llama3-bf16", "bf16"));
  Session s(*model, {.context = 128});
  EXPECT_LE(max_abs_diff(s.decode(ids).data(), test::ref()["models"]["tiny-llama3-bf16"]["medium"]["last_logits"].get<std::vector<double>>()), 1e-3);
}

TEST(Convert, OverridesAndErrors) {
  test::TempDir dir;
  EXPECT_THROW(convert_hf_to_gguf(dir.file("nope"), dir.file("x.gguf"), ConvertType::F32), Error);
  EXPECT_THROW(parse_convert_type("q4_0"), Error);
  // A user override of the RoPE base changes the model that runs.
  LoadOptions o;
  o.rope.theta = 10000.0;
  const auto model = Model::load(test::model_dir("tiny-chatqa2"), o);
  EXPECT_EQ(model->config().rope.theta, 10000.0);
  EXPECT_NEAR(model->rope().inv_freq[1], std::pow(10000.0, -2.0 / 16), 1e-7);
}

}  // namespace
}  // namespace longqa
