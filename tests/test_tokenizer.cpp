// Tokenizers against HF's ids: the fixture texts (tiny and real Llama-3 vocabularies, from
// tokenizer.json and from GGUF), the public llama-bpe vectors, SentencePiece BPE, and decoding.
#include <gtest/gtest.h>

#include <sstream>

#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/pretokenizer.h"
#include "engine/tokenizer.h"
#include "test_util.h"
#include "util/error.h"
#include "util/utf8.h"

namespace longqa {
namespace {

std::vector<std::string> fixture_texts() {
  return test::read_json(test::data("texts.json"))["texts"].get<std::vector<std::string>>();
}

void expect_matches_hf(const Tokenizer& tok, const std::string& which) {
  const auto texts = fixture_texts();
  const auto& expected = test::ref()["tokens"][which];
  ASSERT_EQ(expected.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(tok.encode(texts[i]), expected[i].get<std::vector<int32_t>>()) << "text " << i << ": " << texts[i];
    const auto ids = tok.encode(texts[i]);
    EXPECT_EQ(tok.decode(ids), texts[i]) << "round trip of text " << i;
  }
}

TEST(Tokenizer, TinyFromTokenizerJsonMatchesHf) {
  expect_matches_hf(*load_tokenizer(test::model_dir("tiny-llama3")), "tiny");
}

TEST(Tokenizer, TinyFromGgufMatchesHf) {
  expect_matches_hf(*load_tokenizer(test::model_dir("tiny-llama3.f32.gguf")), "tiny");
}

TEST(Tokenizer, Llama3MatchesHf) {
  expect_matches_hf(*load_tokenizer(test::bundled("llama3-tokenizer/tokenizer.json")), "llama3");
}

TEST(Tokenizer, Llama3PublicVectors) {
  const auto tok = load_tokenizer(test::bundled("llama3-tokenizer/tokenizer.json"));
  std::ifstream inp_file(test::data("tokenizer-vectors/llama-bpe.inp"), std::ios::binary);
  std::ifstream out_file(test::data("tokenizer-vectors/llama-bpe.out"));
  const std::string inp((std::istreambuf_iterator<char>(inp_file)), std::istreambuf_iterator<char>());
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0, next; (next = inp.find(sep, pos)) != std::string::npos; pos = next + sep.size())
    texts.push_back(inp.substr(pos, next - pos));
  std::vector<std::vector<int32_t>> expected;
  for (std::string line; std::getline(out_file, line);) {
    std::istringstream in(line);
    std::vector<int32_t> ids;
    for (int32_t id; in >> id;) ids.push_back(id);
    expected.push_back(ids);
  }
  ASSERT_EQ(texts.size(), 46u);
  ASSERT_EQ(expected.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(tok->encode(texts[i]), expected[i]) << "vector " << i << ": '" << texts[i] << "'";
    EXPECT_EQ(tok->decode(tok->encode(texts[i])), texts[i]);
  }
}

TEST(Tokenizer, SpecialTokensAreRecognisedOnlyWhenAsked) {
  const auto tok = load_tokenizer(test::bundled("llama3-tokenizer/tokenizer.json"));
  const std::string text = "<|begin_of_text|>hi<|eot_id|>";
  EXPECT_EQ(tok->encode(text), (std::vector<int32_t>{128000, 6151, 128009}));
  const auto plain = tok->encode(text, false);
  EXPECT_GT(plain.size(), 3u);
  EXPECT_EQ(tok->decode(plain), text);
  EXPECT_TRUE(tok->is_special(128009));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{128000, 6151, 128009}, true), "hi");
  EXPECT_EQ(tok->encode("<|eot_id"), tok->encode("<|eot_id", false));  // an incomplete special is text
}

TEST(Tokenizer, InvalidUtf8IsEncodedByteForByte) {
  const auto tok = load_tokenizer(test::bundled("llama3-tokenizer/tokenizer.json"));
  const std::string bad = std::string("ok \xff\xfe caf\xc3") + " \xe2\x82 end";
  const auto ids = tok->encode(bad);
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(tok->decode(ids), bad);
}

TEST(Tokenizer, LongRunsWithoutSpacesStayFast) {
  const auto tok = load_tokenizer(test::bundled("llama3-tokenizer/tokenizer.json"));
  std::string blob;
  for (int i = 0; i < 20000; ++i) blob += static_cast<char>('a' + (i * 7919) % 26);  // one 20 KB "word"
  const auto ids = tok->encode(blob);
  EXPECT_EQ(tok->decode(ids), blob);
}

TEST(Tokenizer, DecodeRejectsIdsOutsideTheVocabulary) {
  const auto tok = load_tokenizer(test::model_dir("tiny-llama3"));
  EXPECT_THROW(tok->decode(std::vector<int32_t>{512}), Error);
  EXPECT_THROW(tok->piece(-1), Error);
}

// A SentencePiece vocabulary in a GGUF file, as Llama-2 and Mistral ship it.
std::string write_spm_gguf(const test::TempDir& dir, bool add_space_prefix) {
  using gguf::Value;
  using gguf::ValueType;
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.push_back(name);
    types.push_back(6);
  }
  // Pieces with scores; higher merges first.
  const std::vector<std::pair<std::string, float>> pieces = {
      {"\xe2\x96\x81", -1}, {"h", -2}, {"e", -2}, {"l", -2}, {"o", -2}, {"w", -2}, {"r", -2}, {"d", -2},
      {"he", -3}, {"ll", -4}, {"hell", -5}, {"hello", -6}, {"\xe2\x96\x81hello", -7}, {"wor", -20}, {"or", -8},
      {"\xe2\x96\x81w", -9}, {"\xe2\x96\x81wor", -10}, {"ld", -11}, {"\xe2\x96\x81world", -12}};
  std::vector<float> scores(tokens.size(), 0.0f);
  for (const auto& [p, s] : pieces) {
    tokens.push_back(p);
    types.push_back(1);
    scores.push_back(s);
  }
  auto arr = [](ValueType t, auto items) {
    std::vector<Value> v;
    for (const auto& x : items) {
      if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::string>) v.push_back(Value::str(x));
      else if constexpr (std::is_same_v<std::decay_t<decltype(x)>, float>) v.push_back(Value::f32(x));
      else v.push_back(Value::i32(x));
    }
    return Value::array(t, std::move(v));
  };
  gguf::Writer w;
  w.set("tokenizer.ggml.model", Value::str("llama"));
  w.set("tokenizer.ggml.tokens", arr(ValueType::STRING, tokens));
  w.set("tokenizer.ggml.scores", arr(ValueType::FLOAT32, scores));
  w.set("tokenizer.ggml.token_type", arr(ValueType::INT32, types));
  w.set("tokenizer.ggml.unknown_token_id", Value::u32(0));
  w.set("tokenizer.ggml.add_space_prefix", Value::boolean(add_space_prefix));
  const std::string path = dir.file("spm.gguf");
  w.write(path);
  return path;
}

TEST(Tokenizer, SentencePieceMergesByScoreWithByteFallback) {
  test::TempDir dir;
  const auto tok = load_tokenizer(write_spm_gguf(dir, true));
  EXPECT_EQ(tok->kind(), "SentencePiece BPE");
  const int32_t base = 3 + 256;
  auto id = [&](const std::string& p) { return *tok->find(p); };
  // "▁hello▁world": ▁hello merges fully; "▁world" comes from ▁w+or -> ... -> ▁world by best scores.
  EXPECT_EQ(tok->encode("hello world"), (std::vector<int32_t>{id("\xe2\x96\x81hello"), id("\xe2\x96\x81world")}));
  EXPECT_EQ(tok->decode(tok->encode("hello world")), "hello world");
  // Characters outside the vocabulary fall back to bytes: "é" is C3 A9.
  EXPECT_EQ(tok->encode("é"), (std::vector<int32_t>{id("\xe2\x96\x81"), 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(tok->decode(tok->encode("hé")), "hé");
  EXPECT_EQ(tok->encode("</s>"), (std::vector<int32_t>{2}));
  EXPECT_GE(id("he"), base);

  test::TempDir dir2;
  const auto bare = load_tokenizer(write_spm_gguf(dir2, false));
  EXPECT_EQ(bare->encode("hello"), (std::vector<int32_t>{*bare->find("hello")}));
}

// A Llama-2/Mistral style tokenizer.json: BPE merges over ▁-marked text with byte fallback.
std::string write_spm_json(const test::TempDir& dir, const nlohmann::json& normalizer, const nlohmann::json& pre_tokenizer) {
  nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  int next = 259;
  for (const char* p : {"\xe2\x96\x81", "h", "e", "l", "o", "w", "r", "d", "he", "ll", "hell", "hello", "hello\xe2\x96\x81",
                        "\xe2\x96\x81hello", "or", "\xe2\x96\x81w", "\xe2\x96\x81wor", "ld", "\xe2\x96\x81world"})
    vocab[p] = next++;
  const nlohmann::json merges = {"h e", "l l", "he ll", "hell o", "hello \xe2\x96\x81", "\xe2\x96\x81 hello", "o r",
                                 "\xe2\x96\x81 w", "\xe2\x96\x81w or", "l d", "\xe2\x96\x81wor ld"};
  const nlohmann::json j = {
      {"added_tokens", {{{"id", 1}, {"content", "<s>"}, {"special", true}}, {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
      {"normalizer", normalizer},
      {"pre_tokenizer", pre_tokenizer},
      {"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", true}, {"vocab", vocab}, {"merges", merges}}}};
  const std::string path = dir.file("tokenizer.json");
  std::ofstream(path) << j.dump();
  return path;
}

TEST(Tokenizer, SentencePieceFromTokenizerJson) {
  const std::string sp = "\xe2\x96\x81";
  {  // Llama-2 legacy: Prepend + Replace normalizer on every segment, merges may cross spaces.
    test::TempDir dir;
    const auto tok = load_tokenizer(write_spm_json(
        dir, {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", sp}}, {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", sp}}}}},
        nullptr));
    auto id = [&](const std::string& p) { return *tok->find(p); };
    // "hello ▁" outranks "▁ hello", so the space sticks to the end of the word.
    EXPECT_EQ(tok->encode("hello world"), (std::vector<int32_t>{id(sp), id("hello" + sp), id("w"), id("or"), id("ld")}));
    EXPECT_EQ(tok->encode("hello</s>hello"), (std::vector<int32_t>{id(sp + "hello"), 2, id(sp + "hello")}));
    EXPECT_EQ(tok->decode(tok->encode("hello world")), "hello world");
  }
  {  // Metaspace, prefix on the first segment only, words split at ▁.
    test::TempDir dir;
    const auto tok = load_tokenizer(write_spm_json(
        dir, nullptr, {{"type", "Metaspace"}, {"replacement", sp}, {"prepend_scheme", "first"}, {"split", true}}));
    auto id = [&](const std::string& p) { return *tok->find(p); };
    EXPECT_EQ(tok->encode("hello world"), (std::vector<int32_t>{id(sp + "hello"), id(sp + "world")}));
    EXPECT_EQ(tok->encode("hello</s>hello"), (std::vector<int32_t>{id(sp + "hello"), 2, id("hello")}));
    EXPECT_EQ(tok->encode("hi"), (std::vector<int32_t>{id(sp), id("h"), 3 + 'i'}));  // 'i' falls back to a byte
  }
}

TEST(Pretokenizer, DigitGroupingFollowsEachFamily) {
  auto split = [](const char* pattern, const std::string& text) {
    std::vector<std::string> pieces;
    Pretokenizer(pattern).split(text, [&](std::string_view p) { pieces.emplace_back(p); });
    return pieces;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split(regex::kLlama3, "abc 12345"), (V{"abc", " ", "123", "45"}));
  EXPECT_EQ(split(regex::kQwen2, "abc 123"), (V{"abc", " ", "1", "2", "3"}));
  EXPECT_EQ(split(regex::kGpt2, "abc 12345"), (V{"abc", " 12345"}));
  EXPECT_EQ(split(regex::kLlama3, "I'LL go\n\n  x"), (V{"I", "'LL", " go", "\n\n", " ", " x"}));
  EXPECT_THROW(Pretokenizer("(unclosed"), Error);
}

TEST(Utf8, CompletePrefixHoldsBackPartialCharacters) {
  EXPECT_EQ(utf8::complete_prefix("abc"), 3u);
  EXPECT_EQ(utf8::complete_prefix("ab\xc3"), 2u);
  EXPECT_EQ(utf8::complete_prefix("ab\xc3\xa9"), 4u);
  EXPECT_EQ(utf8::complete_prefix("\xf0\x9f\x91"), 0u);
  EXPECT_EQ(utf8::complete_prefix("\xf0\x9f\x91\x8d"), 4u);
  EXPECT_EQ(utf8::complete_prefix("a\xff"), 2u);  // invalid bytes are not held back forever
  EXPECT_EQ(utf8::complete_prefix(""), 0u);
}

}  // namespace
}  // namespace longqa
