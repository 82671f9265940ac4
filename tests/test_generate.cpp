// The generation loop and the command line, end to end on the fixture models.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "engine/generator.h"
#include "test_util.h"
#include "util/error.h"

namespace longqa {
namespace {

using test::run_longqa;

TEST(Generate, GreedyContinuationMatchesTheReferenceArgmax) {
  // The reference argmax after the short prompt is the greedy next token.
  const auto model = Model::load(test::model_dir("tiny-llama3"));
  const auto ids = test::read_json(test::data("prompts.json"))["short"].get<std::vector<int32_t>>();
  const int32_t next = test::ref()["models"]["tiny-llama3"]["short"]["argmax"].back().get<int32_t>();
  Session s(*model, {.context = 64});
  GenerateOptions o;
  o.max_tokens = 1;
  o.stop_at_eos = false;
  const GenerateResult r = generate(s, ids, o);
  EXPECT_EQ(r.completion_tokens, 1);
  EXPECT_EQ(r.text, model->tokenizer().piece(next));
  EXPECT_EQ(r.finish_reason, "length");
}

TEST(Generate, StreamedPiecesAreTheTextAndStopStringsCut) {
  const auto model = Model::load(test::model_dir("tiny-qwen2"));
  const auto prompt = model->tokenizer().encode("The quick brown fox");
  Session s(*model, {.context = 128});
  GenerateOptions o;
  o.max_tokens = 40;
  o.stop_at_eos = false;
  o.sampling = {.temperature = 0.8f, .seed = 5};
  std::string streamed;
  const GenerateResult full = generate(s, prompt, o, [&](std::string_view t) {
    streamed += t;
    return true;
  });
  EXPECT_EQ(streamed, full.text);
  EXPECT_EQ(full.completion_tokens, 40);
  ASSERT_GE(full.text.size(), 6u);

  // Stop at a string taken from the middle of that same (seeded) output.
  const std::string stop = full.text.substr(full.text.size() / 2, 3);
  Session s2(*model, {.context = 128});
  o.stop = {stop};
  streamed.clear();
  const GenerateResult cut = generate(s2, prompt, o, [&](std::string_view t) {
    streamed += t;
    return true;
  });
  EXPECT_EQ(cut.finish_reason, "stop");
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(streamed, cut.text);
}

TEST(Generate, CancelAndBudget) {
  const auto model = Model::load(test::model_dir("tiny-llama3"));
  Session s(*model, {.context = 20});
  GenerateOptions o;
  o.max_tokens = 100;  // more than the context leaves: generation stops at the context
  o.stop_at_eos = false;
  const GenerateResult r = generate(s, std::vector<int32_t>{510, 1, 2}, o);
  EXPECT_EQ(r.completion_tokens, 17);
  Session s2(*model, {.context = 64});
  int calls = 0;
  const GenerateResult c = generate(s2, std::vector<int32_t>{510, 1, 2}, o, [&](std::string_view) { return ++calls < 3; });
  EXPECT_LE(c.completion_tokens, 10);
  Session s3(*model, {.context = 2});
  EXPECT_THROW(generate(s3, std::vector<int32_t>{510, 1, 2}, o), Error);
}

TEST(Cli, TokenizePrintsIdsOnOneLine) {
  const auto r = run_longqa("tokenize --model " + test::bundled("llama3-tokenizer/tokenizer.json"),
                            "The quick brown fox jumps over the lazy dog.");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "791 4062 14198 39935 35308 927 279 16053 5679 13\n");
  const auto g = run_longqa("tokenize -m " + test::model_dir("tiny-llama3.f32.gguf"), "<|begin_of_text|>hi");
  EXPECT_EQ(g.out.substr(0, 4), "510 ");
}

TEST(Cli, LogitsAndEmbedPrintJson) {
  const auto r = run_longqa("logits -m " + test::model_dir("tiny-qwen2") + " --ids '510 7 8 9' --all");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["logits"].size(), 4u);
  EXPECT_EQ(j["logits"][0].size(), 512u);
  const auto mapped = run_longqa("logits -m " + test::model_dir("tiny-qwen2") + " --ids '510 7 8 9' --all --mmap");
  ASSERT_EQ(mapped.status, 0) << mapped.err;
  EXPECT_EQ(mapped.out, r.out);  // the weights mapped instead of read: the same logits

  const auto e = run_longqa("embed -m " + test::model_dir("tiny-mistral") + " --ids '510 7 8 9' --pooling last");
  ASSERT_EQ(e.status, 0) << e.err;
  const auto embedding = nlohmann::json::parse(e.out)["embedding"].get<std::vector<double>>();
  EXPECT_EQ(embedding.size(), 128u);
  double norm = 0;
  for (double x : embedding) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  const auto mean = run_longqa("embed -m " + test::model_dir("tiny-mistral") + " --text 'hello there' --pooling mean");
  ASSERT_EQ(mean.status, 0) << mean.err;
}

TEST(Cli, RunStreamsText) {
  const auto r = run_longqa("run -m " + test::model_dir("tiny-llama31") + " -p 'Hello' -n 8 --temp 0.7 --seed 1 -v");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  EXPECT_NE(r.err.find("generated"), std::string::npos) << r.err;
}

TEST(Cli, ErrorsAreOneClearLine) {
  test::TempDir dir;
  test::write_bytes(dir.file("junk.gguf"), {'n', 'o', 'p', 'e', 0, 0, 0, 0});
  for (const std::string& args : {"info -m " + dir.file("junk.gguf"), "info -m " + dir.file("missing.gguf"),
                                  "logits -m " + test::model_dir("tiny-llama3") + " --ids '1 x 2'",
                                  "logits -m " + test::model_dir("tiny-llama3") + " --ids '1 99999'"}) {
    const auto r = run_longqa(args);
    EXPECT_EQ(r.status, 1) << args;
    EXPECT_EQ(r.err.rfind("longqa: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
}

TEST(Cli, InfoDescribesTheModel) {
  const auto r = run_longqa("info -m " + test::model_dir("tiny-llama31"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("architecture:   llama"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("scaling llama3 x8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model.layers.3.mlp.down_proj.weight"), std::string::npos);
}

TEST(Cli, WithoutModelCommandsRunTheBundledNanoChatQA) {
  const auto info = run_longqa("info");
  ASSERT_EQ(info.status, 0) << info.err;
  EXPECT_NE(info.out.find("models/nano-chatqa.gguf"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("hidden:         192"), std::string::npos) << info.out;
  const auto ids = run_longqa("tokenize", "The pass key is 60317.");
  ASSERT_EQ(ids.status, 0) << ids.err;
  EXPECT_NE(ids.out.find(' '), std::string::npos) << ids.out;

  // Its main job: a fact planted in a licence text the recipe never trained on, found and copied.
  std::ifstream f(test::bundled("haystack/Apache-2.0.txt"));
  const std::string licence((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  test::TempDir dir;
  for (const auto& [at, key] : {std::pair{size_t{1200}, "60317"}, std::pair{size_t{3100}, "84215"}}) {
    const size_t cut = licence.find("\n\n", at);
    const std::string doc = licence.substr(0, cut) + "\n\nThe pass key is " + key + ". Remember it. " + key +
                            " is the pass key." + licence.substr(cut, 2000);
    const std::string path = dir.file(std::string(key) + ".txt");
    std::ofstream(path) << doc;
    const auto ask = run_longqa("ask --doc " + path + " -n 24 'What is the pass key?'");
    ASSERT_EQ(ask.status, 0) << ask.err;
    EXPECT_NE(ask.out.find(key), std::string::npos) << ask.out;
  }
}

}  // namespace
}  // namespace longqa
