// Evaluation: the scoring scripts' text handling, RULER's and LongBench's scorers (hand-computed
// cases, quirks included), the needle-in-a-haystack context builder, the heatmap files, and
// `eval niah` / `eval score` end to end.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>

#include "engine/tokenizer.h"
#include "eval/chatrag.h"
#include "eval/fuzzy.h"
#include "eval/heatmap.h"
#include "eval/infinitebench.h"
#include "eval/niah.h"
#include "eval/png.h"
#include "eval/rouge.h"
#include "eval/ruler.h"
#include "eval/scorers.h"
#include "eval/text_norm.h"
#include "test_util.h"
#include "util/error.h"

namespace longqa {
namespace {
using namespace eval;
using nlohmann::json;
using test::run_longqa;

TEST(TextNorm, NormalizeAnswerAsSquadDoes) {
  EXPECT_EQ(normalize_answer("The Quick, brown fox!"), "quick brown fox");
  EXPECT_EQ(normalize_answer("an apple a day"), "apple day");
  EXPECT_EQ(normalize_answer("(The) cat sat."), "cat sat");
  EXPECT_EQ(normalize_answer("them and another"), "them and another");  // whole words only
  EXPECT_EQ(normalize_answer("A.B.C"), "abc");                           // punctuation goes before articles
  EXPECT_EQ(normalize_answer("Th\xC3\xA9\xC3\xA2tre  \xC3\x89T\xC3\x89"), "th\xC3\xA9\xC3\xA2tre \xC3\xA9t\xC3\xA9");
  EXPECT_EQ(normalize_answer("a\xC2\xA0" "b the\tc"), "b c");            // NBSP is whitespace to str.split()
  // Curly quotes are not string.punctuation but are \W, so "the" between them is a word: a space stays.
  EXPECT_EQ(normalize_answer("\xE2\x80\x9Cthe\xE2\x80\x9D end"), "\xE2\x80\x9C \xE2\x80\x9D end");
  EXPECT_EQ(py_split("  a \n b\x1f" "c "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(py_strip("\x0b x y \xE3\x80\x80"), "x y");
}

TEST(TextNorm, PythonRoundAndRepr) {
  EXPECT_EQ(py_round(2.675, 2), 2.67);  // the double just below 2.675
  EXPECT_EQ(py_round(0.125, 2), 0.12);  // an exact tie goes to even
  EXPECT_EQ(py_round(0.375, 2), 0.38);
  EXPECT_EQ(py_round(200.0 / 3, 2), 66.67);
  EXPECT_EQ(py_repr(100.0), "100.0");
  EXPECT_EQ(py_repr(66.67), "66.67");
  EXPECT_EQ(py_repr(0.0), "0.0");
  EXPECT_EQ(py_repr(85.71), "85.71");
}

TEST(Scorers, RulerStringMatch) {
  const std::vector<std::string> preds = {"The special magic numbers are 123 and 456.", "No idea", "it is 999"};
  const std::vector<std::vector<std::string>> refs = {{"123", "456"}, {"789"}, {"999", "111"}};
  EXPECT_EQ(string_match_all(preds, refs), 50.0);   // (1 + 0 + 0.5) / 3 * 100 = 50
  EXPECT_EQ(string_match_part(preds, refs), 66.67);  // (1 + 0 + 1) / 3 * 100
  EXPECT_EQ(string_match_all({"ABC"}, {{"abc"}}), 100.0);  // case-insensitive
  EXPECT_EQ(ruler_postprocess("  answer:\x01" "42 \t\n"), "answer:\n42");
  EXPECT_TRUE(ruler_uses_part("qa_1"));
  EXPECT_FALSE(ruler_uses_part("niah_multikey_2"));
  EXPECT_THROW(string_match_all({}, {}), Error);
  EXPECT_THROW(string_match_all({"x"}, {{}}), Error);
}

TEST(Scorers, LongBenchMetrics) {
  // pred tokens [cat sat on mat], truth [cat on mat]: p = 3/4, r = 1.
  EXPECT_DOUBLE_EQ(longbench_qa_f1("The cat sat on the mat.", "a cat on a mat"), 2 * 0.75 / 1.75);
  EXPECT_EQ(longbench_qa_f1("nothing", "cat"), 0.0);
  EXPECT_DOUBLE_EQ(longbench_count("There are 3 passages, I think 3 or 4", "3"), 2.0 / 3);
  EXPECT_EQ(longbench_count("no numbers", "3"), 0.0);
  EXPECT_EQ(longbench_retrieval("Paragraph 12 and paragraph 3", "Paragraph 12"), 0.5);
  EXPECT_EQ(longbench_retrieval("12", "see Paragraph x, then Paragraph 12"), 1.0);
  EXPECT_THROW(longbench_retrieval("12", "nothing"), Error);
  // metrics.py removes from the list it iterates: "Num" survives because its turn is skipped.
  EXPECT_EQ(longbench_classification("Number of people, Number", "Number of people", {"Number", "Num", "Number of people"}), 0.5);
  EXPECT_EQ(longbench_classification("Location", "Location", {"Location", "Person"}), 1.0);
  EXPECT_EQ(longbench_classification("Person", "Location", {"Location", "Person"}), 0.0);
}

// Expected values from the rouge package (pltrdy/rouge 1.0.1) run in Python 3.11 through LongBench's
// rouge_score and scorer frames.
TEST(Scorers, RougeLAsTheRougePackageComputesIt) {
  EXPECT_DOUBLE_EQ(rouge_l_f("The cat sat on the mat. It was happy.", "A cat sat on a mat. The cat was happy."), 0.7777777727777778);
  EXPECT_DOUBLE_EQ(rouge_l_f("the quick brown fox", "the quick brown fox jumps over the lazy dog"), 0.6666666622222223);
  EXPECT_EQ(rouge_l_f("", "reference text"), 0.0);
  EXPECT_EQ(rouge_l_f("...", "reference. text."), 0.0);
  EXPECT_DOUBLE_EQ(rouge_l_f("one two three. three two one.", "one three. two"), 0.999999995);
  EXPECT_DOUBLE_EQ(rouge_l_f("a b c d e f g h i j k l m n o p", "p o n m l k j i h g f e d c b a"), 0.062499995000000405);
  // Past Python's recursion limit the package raises and LongBench scores 0.
  auto words = [](const char* prefix, int n) {
    std::string s = "shared";
    for (int i = 0; i < n; ++i) s += std::string(" ") + prefix + std::to_string(i);
    return s;
  };
  EXPECT_DOUBLE_EQ(rouge_l_f(words("a", 10), words("b", 979)), 0.002018163251707368);
  EXPECT_EQ(rouge_l_f(words("a", 10), words("b", 980)), 0.0);
}

// Expected values from fuzzywuzzy 0.18's ratio over Python's difflib (no python-Levenshtein, as
// LongBench's requirements install it).
TEST(Scorers, CodeSimilarityAsFuzzywuzzyComputesIt) {
  EXPECT_EQ(fuzz_ratio("return x + 1", "return x+1"), 91);
  EXPECT_EQ(fuzz_ratio("    self.assertEqual(a, b)", "self.assertEqual(a, b)"), 92);
  EXPECT_EQ(fuzz_ratio("h\xC3\xA9llo w\xC3\xB6rld", "hello world"), 82);  // code points, not bytes
  EXPECT_EQ(fuzz_ratio("abc", "abc"), 100);
  EXPECT_EQ(fuzz_ratio("", "x"), 0);
  // difflib's autojunk: in a b of 200+ characters, characters above 1% + 1 are dropped from matching.
  std::ifstream in(test::data("difflib-autojunk.txt"));
  std::string a, b;
  std::getline(in, a);
  std::getline(in, b);
  EXPECT_EQ(sequence_matcher_ratio(std::u32string(a.begin(), a.end()), std::u32string(b.begin(), b.end())), 0.0);
  EXPECT_EQ(longbench_code_sim("\n\n# comment\n```python\nreturn x + 1\nmore", "return x+1"), 0.91);
  EXPECT_EQ(longbench_code_sim("// only comments\n# here", "x = 1"), 0.0);
}

TEST(Scorers, LongBenchDatasetRules) {
  EXPECT_EQ(longbench_score("qasper", {"The cat sat on the mat."}, {{"a dog", "a cat on a mat"}}, {}), 85.71);
  // trec keeps the first non-empty line only.
  EXPECT_EQ(longbench_score("trec", {"\n\nLocation\nPerson"}, {{"Location"}}, {"Location", "Person"}), 100.0);
  EXPECT_EQ(longbench_score("passage_count", {"3", "5"}, {{"3"}, {"4"}}, {}), 50.0);
  EXPECT_EQ(longbench_score("gov_report", {"the quick brown fox"}, {{"the quick brown fox jumps over the lazy dog"}}, {}), 66.67);
  EXPECT_EQ(longbench_score("lcc", {"return x + 1"}, {{"return x+1"}}, {}), 91.0);
  EXPECT_THROW(longbench_score("nope", {"x"}, {{"y"}}, {}), Error);
}

// Expected values computed with the official functions (get_scores.py / metrics.py) in Python.
TEST(Scorers, ChatRagF1) {
  EXPECT_EQ(parlai_normalize("The answer's a blue-car, (really)!"), "answer s blue car really");
  EXPECT_DOUBLE_EQ(chatrag_f1("doc2dial", {"The answer is a blue car.", "", "I think yes</s>"}, {{"blue car"}, {"x"}, {"yes, it is", "no"}}),
                   0.3333333333333333);
  // Without InsCIt's rule the refusal counts as an answer; with it, it is dropped.
  EXPECT_DOUBLE_EQ(chatrag_f1("doc2dial", {"Paris"}, {{"Sorry. I cannot find the answer based on the context.", "Paris, France"}}),
                   0.6666666666666666);
  EXPECT_DOUBLE_EQ(chatrag_f1("inscit", {"Sorry. I cannot find the answer based on the context."},
                              {{"Sorry. I cannot find the answer based on the context.", "Paris"}}), 0.0);
  // QuAC/DoQA: a prediction with an unanswerable key phrase becomes the canonical refusal.
  EXPECT_DOUBLE_EQ(chatrag_f1("quac", {"I CANNOT FIND that", "it was in 1990"},
                              {{"Sorry. I cannot find the answer based on the context."}, {"In 1990."}}), 0.8333333333333333);
  EXPECT_THROW(chatrag_f1("convfinqa", {"x"}, {{"y"}}), Error);
  EXPECT_THROW(chatrag_f1("quac", {"x", "y"}, {{"y"}}), Error);
}

TEST(Scorers, NumpyMeanAddsPairwise) {
  std::vector<double> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.1 * static_cast<double>(i % 7) + 1e-3;
  double naive = 0;
  for (double x : v) naive += x;
  EXPECT_NEAR(numpy_mean(v), naive / 1000, 1e-12);
  EXPECT_EQ(numpy_mean({1.0, 2.0, 4.0}), 7.0 / 3);
  EXPECT_THROW(numpy_mean({}), Error);
}

TEST(Scorers, ConvFinQaRules) {
  const std::vector<std::string> preds = {"The total is $1,234.5 million (2017)", "0.1235 roughly", "it rose 25.0 percent",
                                          "about 80 units", "a decrease of 10", "no idea"};
  const std::vector<ConvFinQaGold> gold = {{"1234.5", true, false, "add(1000, 234.5)", "what is the total?"},
                                           {"0.12345", true, false, "divide(1, 8.1)", "what ratio?"},
                                           {"0.25", true, false, "divide(1, 4)", "what percent change?"},
                                           {"80.0", true, false, "x", "how many?"},
                                           {"-10", true, true, "subtract(5, 15)", "what change?"},
                                           {"7", true, true, "y", "what?"}};
  EXPECT_DOUBLE_EQ(convfinqa_accuracy(preds, gold), 5.0 / 6);
  // The official script crashes comparing a string answer with 0; longqa says so instead of guessing.
  EXPECT_THROW(convfinqa_accuracy({"a decrease"}, {{"-10", false, false, "f", "q"}}), Error);
}

// Expected values computed with compute_scores.py's functions in Python.
TEST(Scorers, InfiniteBenchTasks) {
  auto one = [](const char* task, const std::string& pred, const json& label) { return infinitebench_score_one(task, pred, label); };
  EXPECT_EQ(one("passkey", "The pass key is 71432.", "71432"), 1);
  EXPECT_EQ(one("passkey", "key 7143 2", "71432"), 0);
  EXPECT_EQ(one("passkey", "The pass key is 71432.", json::array({"71432"})), 1);  // a list's first item
  EXPECT_EQ(one("kv_retrieval", "a1b2-c3", json::array({"a1b2-c3"})), 0);            // but kv_retrieval takes it whole
  EXPECT_EQ(one("kv_retrieval", "The value is \"a1b2-c3\".", "a1b2-c3"), 1);
  EXPECT_EQ(one("kv_retrieval", "a1b2-c3x", "a1b2-c3"), 0);
  EXPECT_EQ(one("code_run", "The output is: 42", 42), 1);
  EXPECT_EQ(one("code_run", "42.", 42), 1);
  EXPECT_EQ(one("code_run", "result -7", -7), 1);
  EXPECT_EQ(one("code_run", "x", 3), 0);
  EXPECT_EQ(one("code_debug", "B. foo", json::array({"foo", "B"})), 1);
  EXPECT_EQ(one("code_debug", "The answer is: Option C", json::array({"bar", "C"})), 1);
  EXPECT_EQ(one("code_debug", "the answer is: bar()", json::array({"bar", "C"})), 1);
  EXPECT_EQ(one("code_debug", "is:", json::array({"bar", "C"})), 0);
  EXPECT_EQ(one("math_find", "It is 12.5 or 13", 12.5), 1);
  EXPECT_EQ(one("math_find", "value 7", 7), 1);
  EXPECT_EQ(one("math_find", "12.0", 12.0), 1);
  EXPECT_THROW(one("math_find", "7", "7"), Error);
  EXPECT_EQ(one("longdialogue_qa_eng", "I think it was john.", json::array({"JOHN"})), 1);
  EXPECT_EQ(one("longdialogue_qa_eng", "Johnny", json::array({"JOHN"})), 0);
  EXPECT_EQ(one("longbook_choice_eng", "B) dog", json::array({"dog", "B"})), 1);
  EXPECT_EQ(one("longbook_choice_eng", "I think the answer is: C cat", json::array({"cat", "C"})), 1);
  EXPECT_EQ(one("longbook_choice_eng", "maybe AB here", json::array({"x", "A"})), 0);
  EXPECT_EQ(one("longbook_choice_eng", "  ", json::array({"x", "A"})), 0);
  EXPECT_EQ(one("longbook_choice_eng", "x", json::array({"x", "A"})), 1);  // the whole prediction is an answer
  EXPECT_EQ(one("code_debug", "  C: bar", json::array({"bar", "C"})), 1);  // stripped first
  EXPECT_EQ(one("code_debug", "the correct option is: C", json::array({"bar", "C"})), 1);
  EXPECT_EQ(one("math_find", "value 7", json::array({7})), 1);
  EXPECT_EQ(one("math_calc", "1 2 3", json::array({json::array({1, 2, 4})})), 2.0 / 3);
  EXPECT_EQ(one("math_calc", "1, 2, 4, 8", json::array({1, 2, 3, 8})), 0.5);
  EXPECT_DOUBLE_EQ(one("longbook_qa_eng", "The cat sat on the mat.", json::array({"a dog", "a cat on a mat"})), 2 * 0.75 / 1.75);
  EXPECT_THROW(one("longbook_sum_eng", "x", json::array()), Error);
  EXPECT_THROW(one("longbook_qa_chn", "x", json::array({"y"})), Error);
}

// Expected values computed with rouge_score's tokenize / _summary_level_lcs (the path HF evaluate's
// rouge takes for rougeLsum, use_stemmer=False) and score_multi in Python; digit for digit.
TEST(Scorers, InfiniteBenchSummaryRougeLsum) {
  auto one = [](const std::string& pred, const json& label) { return infinitebench_score_one("longbook_sum_eng", pred, label); };
  EXPECT_EQ(one("The cat sat on the mat.", "the cat sat on the mat"), 1.0);
  EXPECT_EQ(one("A quick brown fox.\nIt jumps over the lazy dog!", "The quick brown fox jumps.\nOver the lazy dog, it jumps again."),
            0.6363636363636365);
  EXPECT_EQ(one("the the the cat", "the cat the"), 0.5714285714285715);  // each token occurrence is a hit once
  EXPECT_EQ(one("", "a summary"), 0.0);
  EXPECT_EQ(one("...!!!", "a summary"), 0.0);
  // Python's lower(): U+0130 becomes "i" + a combining dot (a separator), the Kelvin sign "k".
  EXPECT_EQ(one("\u0130stanbul and the \u212aelvin scale", "istanbul kelvin i"), 0.2222222222222222);
  EXPECT_EQ(one("Elizabeth marries Darcy.\n\n\nJane marries Bingley.\n",
                json::array({"Jane marries Bingley. Elizabeth marries Darcy.", "Elizabeth and Darcy marry; so do Jane and Bingley."})),
            1.0);  // several references: the best
  EXPECT_EQ(one("x y z\r\ny z x\n  \n", "z y x\nx z y"), 0.6666666666666666);  // lines split at \n only
  EXPECT_EQ(one("Caf\u00e9 na\u00efve r\u00e9sum\u00e9 2024 ch.3", "cafe naive resume 2024 ch 3"), 0.42857142857142855);
  EXPECT_DOUBLE_EQ(infinitebench_score("passkey", {"1", "2", "3"}, {"1", "2", "4"}), 2.0 / 3);
}

TEST(Niah, NeedleGoesAfterAPeriodAtTheRequestedDepth) {
  const auto tok = load_tokenizer(test::bundled("llama3-tokenizer/tokenizer.json"));
  std::ifstream in(test::bundled("haystack/GPL-3.txt"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::vector<int32_t> hay = tok->encode(text, false);
  const std::string needle_text = "\nThe secret word is walrus.\n";
  const std::vector<int32_t> needle = tok->encode(needle_text, false);
  for (double depth : {0.0, 25.0, 50.0, 100.0}) {
    const std::string ctx = niah_context(*tok, hay, needle, 1000, depth);
    const size_t at = ctx.find(needle_text);
    ASSERT_NE(at, std::string::npos) << depth;
    EXPECT_NEAR(static_cast<double>(tok->encode(ctx, false).size()), 1000.0, 3.0);
    if (depth == 0) {
      EXPECT_EQ(at, 0u);
    }
    if (depth == 100) {
      EXPECT_EQ(at + needle_text.size(), ctx.size());
    }
    if (depth > 0 && depth < 100) {
      EXPECT_EQ(ctx[at - 1], '.');  // backed up to a sentence end
      const double share = static_cast<double>(tok->encode(ctx.substr(0, at), false).size()) / (1000.0 - static_cast<double>(needle.size()));
      EXPECT_LE(share, depth / 100 + 0.01);
      EXPECT_GE(share, depth / 100 - 0.15);
    }
  }
  EXPECT_THROW(niah_context(*tok, hay, needle, 5, 50), Error);
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

TEST(Ruler, SamplesHoldTheirAnswersAndFitTheLength) {
  const auto tok = load_tokenizer(test::bundled("llama3-tokenizer/tokenizer.json"));
  std::ifstream in(test::bundled("haystack/GPL-3.txt"));
  const std::string essay((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const std::string& task : ruler_tasks()) {
    const RulerSample s = make_ruler_sample(task, 3, 4096, *tok, essay);
    const int64_t budget = 4096 - ruler_tokens_to_generate(task);
    EXPECT_LE(s.tokens, budget) << task;
    EXPECT_GE(s.tokens, budget * 8 / 10) << task;  // it grows to the length asked for
    EXPECT_EQ(s.tokens, static_cast<int64_t>(tok->encode(s.before + s.context + s.after, false).size())) << task;
    ASSERT_FALSE(s.outputs.empty()) << task;
    for (const std::string& answer : s.outputs) EXPECT_NE(s.context.find(answer), std::string::npos) << task << ": " << answer;
    EXPECT_NE((s.before + s.after).find(s.question.substr(0, 20)), std::string::npos) << task;
    // The same index gives the same sample; another index another one.
    EXPECT_EQ(make_ruler_sample(task, 3, 4096, *tok, essay).context, s.context) << task;
    EXPECT_NE(make_ruler_sample(task, 4, 4096, *tok, essay).outputs, s.outputs) << task;
  }
  const RulerSample multikey = make_ruler_sample("niah_multikey_1", 0, 4096, *tok, essay);
  EXPECT_EQ(count_of(multikey.context, "One of the special magic numbers for"), 4u);  // 1 asked, 3 distractors
  EXPECT_EQ(make_ruler_sample("niah_multivalue", 0, 4096, *tok, essay).outputs.size(), 4u);
  EXPECT_EQ(make_ruler_sample("niah_multiquery", 0, 4096, *tok, essay).outputs.size(), 4u);
  const RulerSample cwe = make_ruler_sample("cwe", 0, 4096, *tok, essay);
  ASSERT_EQ(cwe.outputs.size(), 10u);
  for (const std::string& w : cwe.outputs) EXPECT_EQ(count_of(cwe.context, ". " + w + " "), 30u - (cwe.context.ends_with(". " + w) ? 1 : 0)) << w;
  const RulerSample vt = make_ruler_sample("vt", 0, 4096, *tok, essay);
  ASSERT_EQ(vt.outputs.size(), 5u);
  EXPECT_NE(vt.context.find("VAR " + vt.outputs[1] + " = VAR " + vt.outputs[0]), std::string::npos);
  EXPECT_NE(vt.after.find("5 variables are assigned the value"), std::string::npos);
  EXPECT_THROW(make_ruler_sample("niah_single_1", 0, 150, *tok, essay), Error);
  EXPECT_THROW(make_ruler_sample("qa_9", 0, 4096, *tok, essay), Error);
}

TEST(Heatmap, PngDecodesToTheDrawnPixels) {
  Image img(7, 3, 0x102030);
  img.set(6, 2, 0xFF0000);
  const std::string png = encode_png(img);
  ASSERT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");
  // IDAT's zlib stream inflates to the filter bytes and pixels.
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  const uint32_t len = static_cast<uint8_t>(png[idat - 4]) << 24 | static_cast<uint8_t>(png[idat - 3]) << 16 |
                       static_cast<uint8_t>(png[idat - 2]) << 8 | static_cast<uint8_t>(png[idat - 1]);
  std::vector<uint8_t> raw(3 * (1 + 7 * 3));
  uLongf raw_len = raw.size();
  ASSERT_EQ(uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(png.data() + idat + 4), len), Z_OK);
  ASSERT_EQ(raw_len, raw.size());
  EXPECT_EQ(raw[0], 0);  // filter: none
  EXPECT_EQ(raw[1], 0x10);
  EXPECT_EQ(raw[2], 0x20);
  EXPECT_EQ(raw[3], 0x30);
  const size_t last = 2 * 22 + 1 + 6 * 3;
  EXPECT_EQ(raw[last], 0xFF);
  EXPECT_EQ(raw[last + 1], 0);
  // Each chunk's CRC covers its type and data.
  EXPECT_EQ(crc32(0, reinterpret_cast<const Bytef*>(png.data() + idat), len + 4),
            static_cast<uint32_t>(static_cast<uint8_t>(png[idat + 4 + len]) << 24 | static_cast<uint8_t>(png[idat + 5 + len]) << 16 |
                                  static_cast<uint8_t>(png[idat + 6 + len]) << 8 | static_cast<uint8_t>(png[idat + 7 + len])));
}

TEST(Heatmap, ColoursAndSvg) {
  EXPECT_EQ(score_color(0), 0xd73027u);
  EXPECT_EQ(score_color(0.5), 0xfee08bu);
  EXPECT_EQ(score_color(1), 0x1a9850u);
  const std::string svg = heatmap_svg({{1024, 0, 1}, {2048, 0, 0}, {1024, 50, 0.5}}, "NIAH <test>");
  EXPECT_NE(svg.find("NIAH &lt;test&gt;"), std::string::npos);
  EXPECT_NE(svg.find("#1a9850"), std::string::npos);
  EXPECT_NE(svg.find("#dddddd"), std::string::npos);  // the missing (2048, 50) cell
  EXPECT_NE(svg.find(">1K<"), std::string::npos);
  EXPECT_NE(svg.find(">50%<"), std::string::npos);
}

TEST(EvalCommand, NiahRunsDrawsAndResumes) {
  test::TempDir dir;
  const std::string base = "eval niah --json -n 4 -m " + test::model_dir("tiny-llama3") + " --lengths 400,800 --out " + dir.file("out");
  const std::string args = base + " --depths 0,50,100";
  const auto first = run_longqa(args);
  ASSERT_EQ(first.status, 0) << first.err;
  const json j = json::parse(first.out);
  ASSERT_EQ(j["cells"].size(), 6u);
  EXPECT_GE(j["accuracy"].get<double>(), 0.0);
  EXPECT_NE(first.err.find("[6/6] length 800, depth 100%"), std::string::npos) << first.err;
  for (const char* f : {"heatmap.svg", "heatmap.png", "niah.json", "niah.jsonl"})
    EXPECT_TRUE(std::filesystem::exists(dir.file("out/") + f)) << f;
  // Every cell is done: a second run generates nothing and reports the same.
  const auto second = run_longqa(args);
  ASSERT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(second.err.find("[1/6]"), std::string::npos) << second.err;
  EXPECT_EQ(json::parse(second.out), j);
  // A cell more runs only that cell.
  const auto third = run_longqa(base + " --depths 0,50,100,75");
  EXPECT_NE(third.err.find("depth 75%"), std::string::npos) << third.err;
  EXPECT_EQ(third.err.find("depth 50%"), std::string::npos) << third.err;
}

TEST(EvalCommand, RunWritesRulerRowsAndResumes) {
  test::TempDir dir;
  const std::string preds = dir.file("preds.jsonl");
  const std::string base = "eval run -m " + test::model_dir("tiny-llama3") + " --task ruler:niah_single_1 --length 1500";
  const std::string args = base + " --out " + preds;
  auto r = run_longqa(args + " --samples 2");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("2 predictions written, 0 already"), std::string::npos) << r.out;
  r = run_longqa(args + " --samples 3");  // one more sample: only it is generated
  EXPECT_NE(r.out.find("1 predictions written, 2 already"), std::string::npos) << r.out;
  std::ifstream in(preds);
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(json::parse(line));
  ASSERT_EQ(rows.size(), 3u);
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i]["index"], static_cast<int>(i));
    EXPECT_EQ(rows[i]["outputs"].size(), 1u);
    EXPECT_EQ(rows[i]["route"], "long");
  }
  r = run_longqa("eval score --json --task ruler:niah_single_1 --preds " + preds);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["n"], 3);
  // RAG mode runs the same samples through retrieval.
  r = run_longqa(base + " --samples 1 --mode rag --out " + dir.file("rag.jsonl"));
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream rag(dir.file("rag.jsonl"));
  std::string line;
  std::getline(rag, line);
  EXPECT_EQ(json::parse(line)["route"], "rag");
  // A RULER-prepared file is completed prompt by prompt.
  std::ofstream(dir.file("prepared.jsonl")) << R"({"index": 7, "input": "The number is 42. What is the number?", "outputs": ["42"], "length": 12})" "\n";
  r = run_longqa("eval run -m " + test::model_dir("tiny-llama3") + " --task ruler:niah_single_1 --data " + dir.file("prepared.jsonl") +
                 " --out " + dir.file("prepared-preds.jsonl"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("1 predictions written"), std::string::npos) << r.out;
}

TEST(EvalCommand, RunsLongBenchFilesAndScoresThem) {
  test::TempDir dir;
  const std::string data = dir.file("hotpotqa.jsonl"), preds = dir.file("preds.jsonl");
  {
    std::ofstream out(data);
    std::string ctx;
    for (int i = 1; i < 40; ++i) ctx += "Paragraph " + std::to_string(i) + ": The river " + std::to_string(i) + " flows north. {input} ";
    for (int i = 0; i < 3; ++i)
      out << json{{"input", "Where does river " + std::to_string(i) + " flow?"}, {"context", ctx}, {"answers", {"north"}},
                  {"length", 400}, {"all_classes", nullptr}, {"_id", "id" + std::to_string(i)}}.dump() << "\n";
  }
  const std::string base = "eval run -m " + test::model_dir("tiny-llama3") + " --task longbench:hotpotqa --data " + data;
  auto r = run_longqa(base + " --limit 2 --max-length 600 --out " + preds);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("2 predictions written, 0 already"), std::string::npos) << r.out;
  r = run_longqa(base + " --max-length 600 --out " + preds);
  EXPECT_NE(r.out.find("1 predictions written, 2 already"), std::string::npos) << r.out;
  std::ifstream in(preds);
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(json::parse(line));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2]["_id"], "id2");
  EXPECT_EQ(rows[2]["answers"], json::array({"north"}));
  EXPECT_EQ(rows[0]["route"], "long");
  r = run_longqa("eval score --json --task longbench:hotpotqa --preds " + preds);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["n"], 3);
  r = run_longqa(base + " --limit 1 --mode rag --k 2 --chunk-tokens 40 --out " + dir.file("rag.jsonl"));
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream rag(dir.file("rag.jsonl"));
  std::string line;
  std::getline(rag, line);
  EXPECT_EQ(json::parse(line)["route"], "rag");
  r = run_longqa("eval run -m " + test::model_dir("tiny-llama3") + " --task longbench:nope --data " + data + " --out " + dir.file("x"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("longbench:nope is not one of the English LongBench datasets"), std::string::npos) << r.err;
}

TEST(EvalCommand, RunsInfiniteBenchFilesAndScoresThem) {
  test::TempDir dir;
  const std::string passkey = dir.file("passkey.jsonl"), debug = dir.file("code_debug.jsonl");
  std::string hay;
  for (int i = 0; i < 60; ++i) hay += "The grass is green. The sky is blue. ";
  std::ofstream(passkey) << json{{"id", 0}, {"context", hay + "The pass key is 68048. Remember it. " + hay},
                                 {"input", "What is the pass key?"}, {"answer", {"68048"}}, {"options", json::array()}}.dump() << "\n";
  std::ofstream(debug) << json{{"id", 5}, {"context", "def f():\n    return 1\n"}, {"input", ""}, {"answer", {"g"}},
                               {"options", {"f", "g", "h", "k"}}}.dump() << "\n";
  const std::string model = test::model_dir("tiny-llama3");
  auto r = run_longqa("eval run -m " + model + " --task infinitebench:passkey --max-length 300 --data " + passkey + " --out " + dir.file("p.jsonl"));
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream p_in(dir.file("p.jsonl"));
  std::string line;
  std::getline(p_in, line);
  const json row = json::parse(line);
  EXPECT_EQ(row["ground_truth"], json::array({"68048"}));
  EXPECT_TRUE(row["prediction"].is_string());
  r = run_longqa("eval score --json --task infinitebench:passkey --preds " + dir.file("p.jsonl"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["n"], 1);
  // The choice tasks' labels are written as [answer, letter].
  r = run_longqa("eval run -m " + model + " --task infinitebench:code_debug --data " + debug + " --out " + dir.file("d.jsonl"));
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream d_in(dir.file("d.jsonl"));
  std::getline(d_in, line);
  EXPECT_EQ(json::parse(line)["ground_truth"], json::array({"g", "B"}));
  EXPECT_EQ(json::parse(line)["id"], 5);
  // code_run and math_find prompts are filled from the input as create_prompt does; an input without
  // the expected call or target is one clear error.
  std::ofstream(dir.file("code_run.jsonl")) << json{{"id", 1}, {"context", "def func_3(x):\n    return x\n"},
                                                    {"input", "What is func_3(-12)?"}, {"answer", {-12}}}.dump() << "\n"
                                            << json{{"id", 2}, {"context", "x"}, {"input", "no call"}, {"answer", {1}}}.dump() << "\n";
  r = run_longqa("eval run -m " + model + " --task infinitebench:code_run --data " + dir.file("code_run.jsonl") + " --out " + dir.file("c.jsonl"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("code_run.jsonl:2: cannot find the function call"), std::string::npos) << r.err;
  std::ifstream c_in(dir.file("c.jsonl"));
  std::getline(c_in, line);
  EXPECT_EQ(json::parse(line)["ground_truth"], json::array({-12}));  // the first row was written before the error
}

TEST(EvalCommand, RunsChatRagFilesAndScoresThem) {
  test::TempDir dir;
  const json samples = json::array(
      {{{"messages", {{{"role", "user"}, {"content", "Where do walruses live?"}}, {{"role", "assistant"}, {"content", "In the Arctic."}},
                      {{"role", "user"}, {"content", "What do they eat?"}}}},
        {"ctxs", {{{"title", "Walrus"}, {"text", "Walruses eat clams."}}, {{"title", "Seal"}, {"text", "Seals eat fish."}}}},
        {"answers", {"clams"}}},
       {{"messages", {{{"role", "user"}, {"content", "Is it cold?"}}}}, {"ctxs", json::array()}, {"answer", "yes"}}});
  std::ofstream(dir.file("doc2dial.json")) << samples.dump();
  const std::string preds = dir.file("preds.jsonl");
  auto r = run_longqa("eval run -m " + test::model_dir("tiny-chatqa2") + " --task chatrag:doc2dial --data " + dir.file("doc2dial.json") +
                      " --out " + preds);
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream in(preds);
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(json::parse(line));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["answers"], json::array({"clams"}));
  EXPECT_EQ(rows[1]["answer"], "yes");
  EXPECT_EQ(rows[0]["pred"].get<std::string>().find('\n'), std::string::npos);
  r = run_longqa("eval score --json --task chatrag:doc2dial --preds " + preds);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["n"], 2);
  r = run_longqa("eval run -m " + test::model_dir("tiny-chatqa2") + " --task chatrag:nope --data " + dir.file("doc2dial.json") +
                 " --out " + dir.file("x"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("chatrag:nope is not one of the ChatRAG Bench datasets"), std::string::npos) << r.err;
}

TEST(EvalCommand, SweepWritesTablesAndPlotAndResumes) {
  test::TempDir dir;
  const std::string args = "eval sweep -m " + test::model_dir("tiny-llama3") + " --budget 600 --chunk-sizes 300 --lengths 1500 --samples 1 --out " +
                           dir.file("sweep");
  auto r = run_longqa(args);
  ASSERT_EQ(r.status, 0) << r.err;
  const json rows = test::read_json(dir.file("sweep/sweep.json"));
  ASSERT_EQ(rows.size(), 3u);  // 1 chunking cell, long and RAG at one length
  EXPECT_EQ(rows[0]["study"], "chunking");
  EXPECT_EQ(rows[0]["k"], 2);  // 600 / 300
  EXPECT_EQ(rows[1]["mode"], "long");
  EXPECT_EQ(rows[2]["mode"], "rag");
  std::ifstream md(dir.file("sweep/sweep.md"));
  const std::string table((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(table.find("| 300 | 2 |"), std::string::npos) << table;
  EXPECT_NE(table.find("| 1500 |"), std::string::npos) << table;
  std::ifstream svg(dir.file("sweep/long-vs-rag.svg"));
  const std::string plot((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  EXPECT_NE(plot.find("<polyline"), std::string::npos);
  // Finished configurations are not run again.
  const auto before = std::filesystem::last_write_time(dir.file("sweep/niah_multikey_1-long-len1500-chunk1200-k5.jsonl"));
  r = run_longqa(args);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(std::filesystem::last_write_time(dir.file("sweep/niah_multikey_1-long-len1500-chunk1200-k5.jsonl")), before);
}

TEST(EvalCommand, ScoresPredictionFiles) {
  test::TempDir dir;
  const std::string ruler = dir.file("ruler.jsonl"), lb = dir.file("lb.jsonl");
  std::ofstream(ruler) << R"({"pred": " 123 and 456 ", "outputs": ["123", "456"]})" "\n"
                       << R"({"pred": "789", "outputs": ["789", "000"]})" "\n";
  auto r = run_longqa("eval score --json --task ruler:niah_multivalue --preds " + ruler);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "{\"task\": \"ruler:niah_multivalue\", \"score\": 75.0, \"n\": 2}\n");
  r = run_longqa("eval score --json --task ruler:qa_1 --preds " + ruler);
  EXPECT_EQ(json::parse(r.out)["score"], 100.0);
  // LongBench's eval.py uses the last row's all_classes for every row.
  std::ofstream(lb) << R"({"pred": "Person", "answers": ["Person"], "all_classes": ["Location"]})" "\n"
                    << R"({"pred": "Location", "answers": ["Location"], "all_classes": ["Location", "Person"]})" "\n";
  r = run_longqa("eval score --task longbench:trec --preds " + lb);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "longbench:trec: 100.0 (2 predictions)\n");
  std::ofstream(dir.file("quac.jsonl")) << R"({"pred": "I cannot find it", "answers": ["Sorry. I cannot find the answer based on the context."]})" "\n"
                                        << R"({"pred": "In 1990", "answer": "in 1990."})" "\n";
  r = run_longqa("eval score --json --task chatrag:quac --preds " + dir.file("quac.jsonl"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "{\"task\": \"chatrag:quac\", \"score\": 100.0, \"n\": 2, \"official\": \"f1: 1.0000\"}\n");
  std::ofstream(dir.file("passkey.jsonl")) << R"({"prediction": "It is 123.", "ground_truth": "123"})" "\n"
                                           << R"({"prediction": "It is 456.", "ground_truth": "457"})" "\n"
                                           << R"({"prediction": "It is 789."})" "\n";  // no label: the script's placeholder
  r = run_longqa("eval score --json --task infinitebench:passkey --preds " + dir.file("passkey.jsonl"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "{\"task\": \"infinitebench:passkey\", \"score\": 33.33333333333333, \"n\": 3, \"official\": \"0.3333333333333333\"}\n");
  r = run_longqa("eval score --task longbench:lsht --preds " + lb);  // a Chinese dataset
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("not one of the English datasets"), std::string::npos) << r.err;
  std::ofstream(dir.file("bad.jsonl")) << "{\"outputs\": [\"1\"]}\n";
  r = run_longqa("eval score --task ruler:vt --preds " + dir.file("bad.jsonl"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("bad.jsonl:1: no string 'pred'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace longqa
