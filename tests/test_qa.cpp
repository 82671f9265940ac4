// The main job: chat templates, the router, and `ask` / Conversation end to end on the fixture
// models — both routes with their citations, the conversational retrieval query, map-reduce
// summaries, and reuse of the document prefix's KV cache within a process and across processes.
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <tuple>

#include "engine/model.h"
#include "qa/chat_template.h"
#include "qa/conversation.h"
#include "qa/router.h"
#include "test_util.h"
#include "util/error.h"

namespace longqa {
namespace {
namespace fs = std::filesystem;
using namespace qa;
using nlohmann::json;
using test::run_longqa;

void write_text(const std::string& path, std::string_view text) {
  std::ofstream(path, std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
}
std::string q(const std::string& s) { return "'" + s + "'"; }

TEST(ChatTemplate, ChatQaFormatIsTheDesignsExactly) {
  const std::vector<Turn> turns = {{"user", "q1"}, {"assistant", "a1"}, {"user", "q2"}};
  const RenderedPrompt p = render_prompt(Template::ChatQA, "<|begin_of_text|>", kChatQaSystem, "CTX", turns, kChatQaInstruction);
  EXPECT_EQ(p.prefix, std::string("<|begin_of_text|>System: ") + kChatQaSystem + "\n\nCTX");
  EXPECT_EQ(p.suffix,
            "\n\nUser: Please give a full and complete answer for the question. q1\n\nAssistant: a1\n\nUser: q2\n\nAssistant:");
  EXPECT_EQ(template_stops(Template::ChatQA), std::vector<std::string>{"\n\nUser:"});
}

TEST(ChatTemplate, OtherFamilies) {
  const std::vector<Turn> turns = {{"user", "q1"}, {"assistant", "a1"}, {"user", "q2"}};
  auto whole = [&](Template t, const std::string& bos) {
    const RenderedPrompt p = render_prompt(t, bos, "SYS", "CTX", turns, "");
    return p.prefix + "|" + p.suffix;
  };
  EXPECT_EQ(whole(Template::Llama3, "<|begin_of_text|>"),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSYS\n\nCTX|<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nq1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\na1<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nq2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(whole(Template::ChatML, ""),
            "<|im_start|>system\nSYS\n\nCTX|<|im_end|>\n<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n"
            "<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(whole(Template::Mistral, "<s>"), "<s>[INST] SYS\n\nCTX|\n\nq1 [/INST] a1</s>[INST] q2 [/INST]");
  EXPECT_THROW(render_prompt(Template::ChatQA, "", "", "", {{"assistant", "x"}}, ""), Error);
  EXPECT_THROW(parse_template("vicuna"), Error);
}

TEST(ChatTemplate, RecognisedFromModelMetadata) {
  EXPECT_EQ(detect_template(*Model::load(test::model_dir("tiny-chatqa2"))), Template::ChatQA);  // by name
  test::TempDir dir;
  for (const char* name : {"tiny-qwen2", "tiny-llama31"}) {
    const fs::path d = dir.file(name);
    fs::copy(test::model_dir(name), d);
    fs::permissions(d, fs::perms::owner_all);
    auto config = test::read_json((d / "tokenizer_config.json").string());
    config["chat_template"] = std::string(name) == "tiny-qwen2" ? "{% for m in messages %}<|im_start|>{{ m.role }}..."
                                                                : "{{ '<|start_header_id|>' + m.role + '<|end_header_id|>' }}";
    fs::permissions(d / "tokenizer_config.json", fs::perms::owner_all);
    std::ofstream(d / "tokenizer_config.json") << config.dump();
  }
  EXPECT_EQ(detect_template(*Model::load(dir.file("tiny-qwen2"))), Template::ChatML);
  EXPECT_EQ(detect_template(*Model::load(dir.file("tiny-llama31"))), Template::Llama3);
  EXPECT_EQ(detect_template(*Model::load(test::model_dir("tiny-mistral"))), Template::ChatQA);  // none: plain text
}

TEST(Router, ChunksLeaveASmallWindowRoom) {
  EXPECT_EQ(rag_chunk_tokens(131072), 1200);  // ChatQA-2's chunks
  EXPECT_EQ(rag_chunk_tokens(9600), 1200);
  EXPECT_EQ(rag_chunk_tokens(8192), 1024);
  EXPECT_EQ(rag_chunk_tokens(4096), 512);
  EXPECT_EQ(rag_chunk_tokens(7), 1);
  EXPECT_EQ(rag_chunk_order(131072), ChunkOrder::BestFirst);  // ChatQA's
  EXPECT_EQ(rag_chunk_order(9600), ChunkOrder::BestFirst);
  EXPECT_EQ(rag_chunk_order(9599), ChunkOrder::BestLast);
  EXPECT_EQ(parse_chunk_order(chunk_order_name(ChunkOrder::BestLast)), ChunkOrder::BestLast);
  EXPECT_THROW(parse_chunk_order("best"), Error);
}

TEST(Router, FollowsTheBudget) {
  EXPECT_EQ(choose_route(Mode::Auto, 1000, 200, 1200, false).route, Route::Long);
  EXPECT_EQ(choose_route(Mode::Auto, 1001, 200, 1200, false).route, Route::Rag);
  EXPECT_EQ(choose_route(Mode::Auto, 5000, 200, 1200, true).route, Route::MapReduce);
  EXPECT_EQ(choose_route(Mode::Auto, 1000, 200, 1200, true).route, Route::Long);  // fits: no need to split
  EXPECT_EQ(choose_route(Mode::Rag, 10, 10, 1200, true).route, Route::Rag);
  EXPECT_THROW(choose_route(Mode::Long, 5000, 200, 1200, false), Error);
  EXPECT_TRUE(is_summary_request("Please summarize the report"));
  EXPECT_TRUE(is_summary_request("Give me an OVERVIEW"));
  EXPECT_FALSE(is_summary_request("Who signed the treaty?"));
}

// Documents written for these tests: short, so the tiny fixture models prefill them quickly.
struct Docs {
  test::TempDir dir;
  std::string walrus = dir.file("walrus.txt"), ledger = dir.file("ledger.md"), big = dir.file("big.txt");
  Docs() {
    write_text(walrus, "The walrus lives in the Arctic. Walruses eat clams and other molluscs from the sea floor.\n");
    write_text(ledger, "# Ledger\n\nThe ledger of the Harbour Company records a payment of 4,210 crowns in 1841.\n");
    std::string text;
    for (int i = 0; i < 20; ++i)
      text += "Section " + std::to_string(i) + ". The committee met again and discussed the budget, the roads "
              "and the harbour at some length, without reaching any decision.\n\n";
    text += "Section 20. The lighthouse keeper's cat is named Marmalade.\n\n";
    write_text(big, text);
  }
};

TEST(Ask, ShortDocumentsGoWholeIntoThePrompt) {
  Docs d;
  const auto r = run_longqa("ask --json -n 4 -m " + test::model_dir("tiny-chatqa2") + " --doc " + q(d.walrus) + " --doc " +
                            q(d.ledger) + " 'What do walruses eat?'");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["route"], "long");
  ASSERT_EQ(j["citations"].size(), 2u);
  EXPECT_EQ(j["citations"][0]["doc"], fs::absolute(d.walrus).lexically_normal().string());
  EXPECT_TRUE(j["citations"][0]["chunk"].is_null());
  EXPECT_TRUE(j["citations"][0]["page"].is_null());
  EXPECT_GT(j["prompt_tokens"].get<int>(), 50);
  EXPECT_GE(j["completion_tokens"].get<int>(), 0);
  EXPECT_LE(j["completion_tokens"].get<int>(), 4);
  EXPECT_EQ(j["template"], "chatqa");
  for (const char* key : {"retrieval_s", "prefill_s", "decode_s"}) EXPECT_TRUE(j["timings"].contains(key)) << key;
}

TEST(Ask, LongTextsAreRetrievedAndCitedByChunk) {
  Docs d;
  const auto r = run_longqa("ask --json -n 4 --long-budget 300 --chunk-tokens 60 --k 2 -m " + test::model_dir("tiny-chatqa2") +
                            " --doc " + q(d.big) + " --doc " + q(d.walrus) + " 'What is the name of the lighthouse keeper cat?'");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["route"], "rag");
  ASSERT_GE(j["citations"].size(), 1u);
  ASSERT_LE(j["citations"].size(), 2u);
  EXPECT_EQ(j["citations"][0]["doc"], fs::absolute(d.big).lexically_normal().string());
  EXPECT_TRUE(j["citations"][0]["chunk"].is_number());
  EXPECT_NE(j["route_reason"].get<std::string>().find("does not fit"), std::string::npos);

  // Forcing the whole text into a window it does not fit is refused with the numbers.
  const auto forced = run_longqa("ask -n 4 --mode long --long-budget 300 -m " + test::model_dir("tiny-chatqa2") + " --doc " +
                                 q(d.big) + " 'Anything?'");
  EXPECT_EQ(forced.status, 1);
  EXPECT_NE(forced.err.find("--mode long"), std::string::npos) << forced.err;
}

TEST(Ask, ConversationalQueryCarriesEarlierTurns) {
  Docs d;
  const auto model = Model::load(test::model_dir("tiny-chatqa2"));
  AskOptions o;
  o.docs = {d.big, d.walrus, d.ledger};
  o.mode = Mode::Rag;
  o.k = 1;
  o.chunk_tokens = 60;
  o.generation.max_tokens = 2;
  Conversation c(*model, o);
  const AskResult first = c.ask("Tell me about the ledger of the Harbour Company.");
  ASSERT_EQ(first.citations.size(), 1u);
  EXPECT_EQ(first.citations[0].doc, fs::absolute(d.ledger).lexically_normal().string());
  // No keyword of its own: the earlier turn ("user: ... ledger ...") finds the document.
  const AskResult second = c.ask("And in which year?");
  ASSERT_EQ(second.citations.size(), 1u);
  EXPECT_EQ(second.citations[0].doc, fs::absolute(d.ledger).lexically_normal().string());
  EXPECT_EQ(c.turns().size(), 4u);
}

// Retrieval over Docs::big: k chunks of chunk_tokens (0: the router's size), 4 answer tokens.
AskOptions rag_over_big(const Docs& d, int64_t k, int64_t chunk_tokens) {
  AskOptions o;
  o.docs = {d.big};
  o.mode = Mode::Rag;
  o.k = k;
  o.chunk_tokens = chunk_tokens;
  o.generation.max_tokens = 4;
  return o;
}

TEST(Ask, RetrievedChunksAreCutToTheContext) {
  Docs d;
  const auto model = Model::load(test::model_dir("tiny-chatqa2"));
  AskOptions o = rag_over_big(d, 6, 60);
  o.max_context = 330;  // room for the instructions and a few chunks, not six
  Conversation c(*model, o);
  const std::string question = "What did the committee say about the budget and the lighthouse keeper's cat?";  // matches every section
  const Conversation::Prepared p = c.prepare(question);
  ASSERT_GE(p.citations.size(), 1u);
  EXPECT_LT(p.citations.size(), 6u);
  EXPECT_LE(static_cast<int64_t>(p.prompt.ids.size()) + 4, 330);
  EXPECT_NE(p.reason.find("retrieved chunks fit the context of 330"), std::string::npos) << p.reason;
  EXPECT_NE(p.reason.find("in chunks of 60 tokens"), std::string::npos) << p.reason;
  o.max_context = 120;  // not even one chunk
  Conversation tight(*model, o);
  EXPECT_THROW(tight.prepare(question), Error);
}

TEST(Ask, DocumentsAreChunkedForTheContextByDefault) {
  Docs d;
  const auto model = Model::load(test::model_dir("tiny-chatqa2"));
  AskOptions o = rag_over_big(d, 2, 0);
  o.max_context = 480;  // chunks of an eighth of it
  Conversation c(*model, o);
  const Conversation::Prepared p = c.prepare("What is the name of the lighthouse keeper's cat?");
  EXPECT_NE(p.reason.find("in chunks of 60 tokens"), std::string::npos) << p.reason;
  ASSERT_GE(p.citations.size(), 1u);
  EXPECT_GT(p.citations[0].chunk, 0);  // the last section: one 1,200-token chunk would hold the whole text
}

TEST(Ask, TheBestChunkGoesNearestTheQuestionInASmallWindow) {
  Docs d;
  const auto model = Model::load(test::model_dir("tiny-chatqa2"));
  AskOptions o = rag_over_big(d, 3, 60);
  const std::string question = "What did the committee say about the budget and the lighthouse keeper's cat?";  // every section
  // Where the best chunk (the cat's) sits in the prompt's text, and the route's reason.
  auto prepared = [&](std::optional<ChunkOrder> order, int64_t max_context) {
    o.chunk_order = order;
    o.max_context = max_context;
    Conversation c(*model, o);
    const Conversation::Prepared p = c.prepare(question);
    EXPECT_EQ(p.citations.size(), 3u);
    const std::string text = model->tokenizer().decode(p.prompt.ids);
    const size_t cat = text.find("Marmalade"), question_at = text.rfind(question);
    EXPECT_NE(cat, std::string::npos);
    EXPECT_NE(question_at, std::string::npos);
    return std::tuple{p.citations, text.substr(cat, question_at - cat), p.reason};
  };
  const auto [first_cited, first_tail, first_reason] = prepared(ChunkOrder::BestFirst, 0);
  const auto [last_cited, last_tail, last_reason] = prepared(ChunkOrder::BestLast, 0);
  EXPECT_NE(first_tail.find("Section"), std::string::npos) << first_tail;  // the other chunks follow the best
  EXPECT_EQ(last_tail.find("Section"), std::string::npos) << last_tail;    // nothing between it and the question
  ASSERT_EQ(first_cited.size(), last_cited.size());
  for (size_t i = 0; i < first_cited.size(); ++i) EXPECT_EQ(first_cited[i].chunk, last_cited[i].chunk);  // rank order both
  EXPECT_EQ(first_reason.find("best chunk last"), std::string::npos) << first_reason;
  EXPECT_NE(last_reason.find("best chunk last"), std::string::npos) << last_reason;
  // By default: ChatQA's order where the window takes ChatQA-2's chunks, best last in a smaller one.
  EXPECT_EQ(std::get<1>(prepared(std::nullopt, 0)), first_tail);
  EXPECT_NE(std::get<2>(prepared(std::nullopt, 4096)).find("best chunk last"), std::string::npos);
}

TEST(Ask, SummariesBeyondTheWindowAreBuiltInParts) {
  Docs d;
  const auto model = Model::load(test::model_dir("tiny-chatqa2"));
  AskOptions o;
  o.docs = {d.big};
  o.long_budget = 800;
  o.generation.max_tokens = 4;
  Conversation c(*model, o);
  const AskResult r = c.ask("Summarize the minutes.");
  EXPECT_EQ(r.route, Route::MapReduce);
  EXPECT_NE(r.route_reason.find("parts"), std::string::npos);
  ASSERT_EQ(r.citations.size(), 1u);
  EXPECT_GT(r.prompt_tokens, 800);  // the parts' prompts and the final one together
}

TEST(Ask, ASecondQuestionReusesTheDocumentsCache) {
  Docs d;
  const auto model = Model::load(test::model_dir("tiny-llama3"));
  AskOptions o;
  o.docs = {d.big};
  o.generation.max_tokens = 6;
  Conversation c(*model, o);
  const AskResult first = c.ask("What is the cat called?");
  EXPECT_EQ(first.route, Route::Long);
  EXPECT_EQ(first.reused_tokens, 0);
  const AskResult second = c.ask("Who met?");
  EXPECT_GT(second.reused_tokens, first.prompt_tokens - 30);  // everything up to the new turn
  EXPECT_LT(second.prompt_tokens - second.reused_tokens, 100);

  // The same answer as a fresh conversation gives, which prefills everything.
  Conversation fresh(*model, o);
  fresh.ask("What is the cat called?");
  EXPECT_EQ(fresh.ask("Who met?").answer, second.answer);
}

TEST(Ask, KvCacheDirSkipsThePrefillInANewProcess) {
  Docs d;
  test::TempDir cache;
  const std::string args = "ask --json -n 6 -m " + test::model_dir("tiny-llama3") + " --doc " + q(d.big) +
                           " --kv-cache-dir " + q(cache.file("kv")) + " ";
  const auto cold = run_longqa(args + "'What is the cat called?'");
  ASSERT_EQ(cold.status, 0) << cold.err;
  const auto warm = run_longqa(args + "'What is the cat called?'");
  ASSERT_EQ(warm.status, 0) << warm.err;
  const json a = json::parse(cold.out), b = json::parse(warm.out);
  EXPECT_EQ(a["timings"]["reused_prompt_tokens"], 0);
  const int prompt = b["prompt_tokens"].get<int>(), reused = b["timings"]["reused_prompt_tokens"].get<int>();
  EXPECT_GT(reused, prompt - 100) << "only the question's own tokens are prefilled";
  EXPECT_GT(reused, 0.8 * prompt);
  EXPECT_EQ(a["answer"], b["answer"]);  // the cache read back is the cache computed
  // Without the cache the answer is the same too.
  const auto plain = run_longqa("ask --json -n 6 -m " + test::model_dir("tiny-llama3") + " --doc " + q(d.big) + " 'What is the cat called?'");
  EXPECT_EQ(json::parse(plain.out)["answer"], a["answer"]);

  // A damaged cache file is ignored (prefilled again and rewritten), not an error.
  for (const auto& e : fs::directory_iterator(cache.file("kv"))) fs::resize_file(e.path(), 100);
  const auto damaged = run_longqa(args + "'What is the cat called?'");
  ASSERT_EQ(damaged.status, 0) << damaged.err;
  EXPECT_EQ(json::parse(damaged.out)["answer"], a["answer"]);
}

TEST(Ask, IndexCanBeAskedWhole) {
  Docs d;
  const std::string index = d.dir.file("index");
  ASSERT_EQ(run_longqa("index add --index " + q(index) + " --chunk-tokens 40 " + q(d.walrus) + " " + q(d.ledger)).status, 0);
  const auto r = run_longqa("ask --json -n 2 -m " + test::model_dir("tiny-chatqa2") + " --index " + q(index) + " 'What is in the ledger?'");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["route"], "long");
  EXPECT_EQ(j["citations"].size(), 2u);
  const auto rag = run_longqa("ask --json -n 2 --mode rag --k 1 -m " + test::model_dir("tiny-chatqa2") + " --index " + q(index) +
                              " 'What is in the ledger?'");
  ASSERT_EQ(rag.status, 0) << rag.err;
  EXPECT_EQ(json::parse(rag.out)["citations"][0]["doc"], fs::absolute(d.ledger).lexically_normal().string());
}

}  // namespace
}  // namespace longqa
