// The training-data jobs: the compressed line reader, `data pretrain` (read back with a Megatron
// reader written here from the format's documentation), `data long-sft`, and the BPE trainer, whose
// tokenizer.json Hugging Face tokenizers (tests/node) must encode exactly as longqa does.
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "data/bpe_trainer.h"
#include "data/line_reader.h"
#include "data/long_sft.h"
#include "data/pretrain.h"
#include "engine/tokenizer.h"
#include "qa/chat_template.h"
#include "test_util.h"
#include "util/error.h"
#include "util/random.h"

namespace longqa {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void spit(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::string gzip(const std::string& s) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, s.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
  z.avail_in = static_cast<uInt>(s.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string zstd(const std::string& s) {
  std::string out(ZSTD_compressBound(s.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), s.data(), s.size(), 3));
  return out;
}

std::vector<std::string> read_lines(const std::string& path) {
  data::LineReader r(path);
  std::vector<std::string> lines;
  for (std::string line; r.next(line);) lines.push_back(line);
  return lines;
}

TEST(LineReader, PlainGzipAndZstdGiveTheSameLines) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 50000; ++i) text += "line " + std::to_string(i) + (i % 7 == 0 ? "\r\n" : "\n");
  text += "\n  last line without a newline";
  spit(dir.file("a.txt"), text);
  spit(dir.file("a.gz"), gzip(text.substr(0, 1000)) + gzip(text.substr(1000)));  // two gzip members, as `cat` joins them
  spit(dir.file("a.zst"), zstd(text));
  const auto plain = read_lines(dir.file("a.txt"));
  ASSERT_EQ(plain.size(), 50002u);
  EXPECT_EQ(plain[0], "line 0");  // "\r\n" ends a line like "\n"
  EXPECT_EQ(plain[50000], "");
  EXPECT_EQ(plain[50001], "  last line without a newline");
  EXPECT_EQ(read_lines(dir.file("a.gz")), plain);
  EXPECT_EQ(read_lines(dir.file("a.zst")), plain);

  data::LineReader r(dir.file("a.gz"));
  ASSERT_TRUE(r.skip(49999));
  std::string line;
  ASSERT_TRUE(r.next(line));
  EXPECT_EQ(line, "line 49999");
  EXPECT_EQ(r.where(), dir.file("a.gz") + ":50000");
}

TEST(LineReader, TruncatedOrCorruptStreamsAreErrors) {
  TempDir dir;
  std::string text(200000, 'x');
  const std::string gz = gzip(text), zs = zstd(text);
  spit(dir.file("cut.gz"), gz.substr(0, gz.size() / 2));
  spit(dir.file("cut.zst"), zs.substr(0, zs.size() - 4));
  std::string bad = gz;
  bad[bad.size() - 8] ^= 0x55;  // the CRC-32 of the data
  spit(dir.file("bad.gz"), bad);
  for (const char* name : {"cut.gz", "cut.zst", "bad.gz"}) {
    try {
      read_lines(dir.file(name));
      ADD_FAILURE() << name << " read without an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(data::LineReader(dir.file("missing.txt")), Error);
}

// ---- Megatron's indexed dataset, read as its documentation describes it ----

struct Megatron {
  uint8_t dtype = 0;
  std::vector<int32_t> sizes;
  std::vector<int64_t> pointers, documents;
  std::vector<std::vector<int32_t>> sequences;
};

template <typename T>
T take(const std::vector<uint8_t>& b, size_t& at) {
  if (at + sizeof(T) > b.size()) throw std::runtime_error("index file too short");
  T v;
  std::memcpy(&v, b.data() + at, sizeof(T));
  at += sizeof(T);
  return v;
}

Megatron read_megatron(const std::string& prefix) {
  const std::vector<uint8_t> idx = test::read_bytes(prefix + ".idx"), bin = test::read_bytes(prefix + ".bin");
  Megatron m;
  EXPECT_EQ(std::string(idx.begin(), idx.begin() + 9), std::string("MMIDIDX\0\0", 9));
  size_t at = 9;
  EXPECT_EQ(take<uint64_t>(idx, at), 1u);  // version
  m.dtype = take<uint8_t>(idx, at);
  const auto sequences = take<uint64_t>(idx, at), documents = take<uint64_t>(idx, at);
  for (uint64_t i = 0; i < sequences; ++i) m.sizes.push_back(take<int32_t>(idx, at));
  for (uint64_t i = 0; i < sequences; ++i) m.pointers.push_back(take<int64_t>(idx, at));
  for (uint64_t i = 0; i < documents; ++i) m.documents.push_back(take<int64_t>(idx, at));
  EXPECT_EQ(at, idx.size()) << "trailing bytes in the index";
  EXPECT_TRUE(m.dtype == 8 || m.dtype == 4) << int(m.dtype);
  const size_t item = m.dtype == 8 ? 2 : 4;
  EXPECT_EQ(m.documents.front(), 0);
  EXPECT_EQ(m.documents.back(), static_cast<int64_t>(sequences));  // Megatron asserts this on load
  int64_t expected_pointer = 0;
  for (size_t i = 0; i < sequences; ++i) {
    EXPECT_EQ(m.pointers[i], expected_pointer);
    expected_pointer += int64_t{m.sizes[i]} * static_cast<int64_t>(item);
    std::vector<int32_t> seq(static_cast<size_t>(m.sizes[i]));
    for (size_t k = 0; k < seq.size(); ++k) {
      const size_t off = static_cast<size_t>(m.pointers[i]) + k * item;
      if (off + item > bin.size()) throw std::runtime_error("a sequence runs past the end of the .bin file");
      if (item == 2) {
        uint16_t v;
        std::memcpy(&v, bin.data() + off, 2);
        seq[k] = v;
      } else {
        std::memcpy(&seq[k], bin.data() + off, 4);
      }
    }
    m.sequences.push_back(std::move(seq));
  }
  EXPECT_EQ(static_cast<size_t>(expected_pointer), bin.size());
  return m;
}

// ---- A SlimPajama-like corpus: three sources with different length profiles ----

struct CorpusDoc {
  std::string source, text;
};

const Tokenizer& llama3() {
  static const auto tk = load_tokenizer(test::bundled("llama3-tokenizer/tokenizer.json"));
  return *tk;
}

std::vector<std::string> haystack_words() {
  std::vector<std::string> words;
  for (const auto& e : fs::directory_iterator(test::bundled("haystack"))) {
    std::ifstream f(e.path());
    for (std::string w; f >> w;)
      if (w.find('<') == std::string::npos) words.push_back(w);  // no "<s>" can arise inside a document
  }
  return words;
}

// Documents whose lengths (in characters) are drawn per source; each starts with a tag "[S17]".
std::vector<CorpusDoc> make_corpus(uint64_t seed) {
  static const std::vector<std::string> words = haystack_words();
  const std::map<std::string, std::pair<int, int>> chars = {
      {"Book", {16000, 40000}}, {"C4", {200, 6000}}, {"Github", {400, 24000}}};
  const std::map<std::string, int> count = {{"Book", 12}, {"C4", 120}, {"Github", 60}};
  std::vector<CorpusDoc> docs;
  Rng rng(seed, 1);
  std::vector<std::string> order;
  for (const auto& [s, n] : count) order.insert(order.end(), static_cast<size_t>(n), s);
  rng.shuffle(order);
  for (size_t i = 0; i < order.size(); ++i) {
    const auto [lo, hi] = chars.at(order[i]);
    const size_t want = static_cast<size_t>(lo) + rng.below(static_cast<uint64_t>(hi - lo));
    std::string text = "[" + order[i] + std::to_string(i) + "]";
    for (size_t w = rng.below(words.size()); text.size() < want; w = (w + 1) % words.size()) text += " " + words[w];
    docs.push_back({order[i], text});
  }
  return docs;
}

std::string jsonl(const std::vector<CorpusDoc>& docs, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i)
    out += json{{"text", docs[i].text}, {"meta", {{"redpajama_set_name", docs[i].source}}}}.dump() + "\n";
  return out;
}

// The corpus in two files, the second gzip-compressed.
std::vector<std::string> write_corpus(const TempDir& dir, const std::vector<CorpusDoc>& docs) {
  spit(dir.file("part1.jsonl"), jsonl(docs, 0, docs.size() / 2));
  spit(dir.file("part2.jsonl.gz"), gzip(jsonl(docs, docs.size() / 2, docs.size())));
  return {dir.file("part1.jsonl"), dir.file("part2.jsonl.gz")};
}

// The token stream cut at the separator's tokens: one span per written document, in order.
std::vector<std::vector<int32_t>> split_documents(const std::vector<int32_t>& stream, const std::vector<int32_t>& sep) {
  std::vector<std::vector<int32_t>> docs(1);
  for (size_t i = 0; i < stream.size();) {
    if (i + sep.size() <= stream.size() && std::equal(sep.begin(), sep.end(), stream.begin() + static_cast<std::ptrdiff_t>(i))) {
      docs.emplace_back();
      i += sep.size();
    } else {
      docs.back().push_back(stream[i++]);
    }
  }
  return docs;
}

std::vector<int32_t> concat(const Megatron& m) {
  std::vector<int32_t> all;
  for (const auto& s : m.sequences) all.insert(all.end(), s.begin(), s.end());
  return all;
}

TEST(Pretrain, MegatronFilesHoldTheDocumentsJoinedBySeparatorsWithoutBosOrEos) {
  TempDir dir;
  const auto docs = make_corpus(7);
  const auto files = write_corpus(dir, docs);
  data::PretrainOptions o;
  o.seq_len = 4096;
  o.batch_bytes = 256 << 10;
  o.tokenizer_name = "llama3";
  const json report = data::run_pretrain(llama3(), files, dir.file("out"), o);
  EXPECT_TRUE(report["finished"].get<bool>());
  EXPECT_TRUE(fs::exists(dir.file("out.report.json")));
  EXPECT_FALSE(fs::exists(dir.file("out.state.json")));

  const Megatron m = read_megatron(dir.file("out"));
  EXPECT_EQ(m.dtype, 4) << "Llama-3's 128,256 ids need int32";
  ASSERT_GT(m.sequences.size(), 10u);
  for (size_t i = 0; i + 1 < m.sizes.size(); ++i) EXPECT_EQ(m.sizes[i], 4096);
  EXPECT_EQ(report["sequences"].get<size_t>(), m.sequences.size());
  EXPECT_EQ(report["last_sequence_tokens"].get<int32_t>(), m.sizes.back());

  const std::vector<int32_t> all = concat(m);
  EXPECT_EQ(report["tokens"].get<size_t>(), all.size());
  for (const int32_t id : all) ASSERT_FALSE(llama3().is_special(id)) << "special token " << id << " in the stream";
  // Without budgets and with short_keep 1 every document is written, whole, in input order.
  const auto sep = llama3().encode("<s>", false);
  const auto pieces = split_documents(all, sep);
  ASSERT_EQ(pieces.size(), docs.size());
  for (size_t i = 0; i < docs.size(); ++i) ASSERT_EQ(llama3().decode(pieces[i]), docs[i].text) << "document " << i;
  EXPECT_EQ(report["separator_tokens"].get<size_t>(), (docs.size() - 1) * sep.size());
}

TEST(Pretrain, PerSourceUpsamplingKeepsTheConfiguredSharesAndFavoursLongDocuments) {
  TempDir dir;
  const auto docs = make_corpus(11);
  const auto files = write_corpus(dir, docs);
  data::PretrainOptions o;
  o.seq_len = 8192;
  o.short_keep = 0.1;
  o.tokens = 60000;
  o.mix = {{"Book", 0.5}, {"C4", 0.1}, {"Github", 0.4}};
  o.seed = 3;
  const json report = data::run_pretrain(llama3(), files, dir.file("up"), o);
  ASSERT_TRUE(report["sources_short_of_budget"].empty()) << report.dump(1);
  EXPECT_EQ(report["tokens"].get<uint64_t>(), 60000u);

  // Recount from the files: each document span's tag names its source; its separator counts with it.
  const Megatron m = read_megatron(dir.file("up"));
  const auto sep = llama3().encode("<s>", false);
  const auto pieces = split_documents(concat(m), sep);
  std::map<std::string, double> tokens;
  std::map<std::string, const CorpusDoc*> by_tag;
  for (const CorpusDoc& d : docs) by_tag[d.text.substr(0, d.text.find(']') + 1)] = &d;
  size_t last_index = 0, cut = 0, long_written = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const std::string text = llama3().decode(pieces[i]);
    const CorpusDoc* d = by_tag.at(text.substr(0, text.find(']') + 1));
    const size_t index = static_cast<size_t>(d - docs.data());
    if (i > 0) {
      EXPECT_GT(index, last_index) << "documents out of input order";
    }
    last_index = index;
    if (text != d->text) {
      EXPECT_TRUE(d->text.starts_with(text)) << "a written document is not a prefix of its input";
      ++cut;
    }
    tokens[d->source] += static_cast<double>(pieces[i].size() + (i > 0 ? sep.size() : 0));
    if (static_cast<double>(d->text.size()) / 3.68 >= 4096) ++long_written;
  }
  EXPECT_LE(cut, 3u) << "only a source's last document may be cut at its budget";
  for (const auto& [source, share] : o.mix) {
    EXPECT_NEAR(tokens[source] / 60000.0, share, 0.01) << source;
    EXPECT_NEAR(report["sources"][source]["share_after"].get<double>(), share, 0.01) << source;
  }
  // Long documents are over-represented after upsampling, within the mixed-length source too.
  size_t long_in = 0;
  for (const CorpusDoc& d : docs) long_in += static_cast<double>(d.text.size()) / 3.68 >= 4096;
  EXPECT_GT(static_cast<double>(long_written) / static_cast<double>(pieces.size()),
            1.5 * static_cast<double>(long_in) / static_cast<double>(docs.size()));
  const json& github = report["sources"]["Github"];
  EXPECT_GT(github["short_dropped"].get<int>(), 0);
}

TEST(Pretrain, SameBytesForAnyThreadCountAndAfterAnInterruptedRunResumes) {
  TempDir dir;
  const auto files = write_corpus(dir, make_corpus(5));
  data::PretrainOptions o;
  o.seq_len = 2048;
  o.short_keep = 0.3;
  o.tokens = 150000;
  o.batch_bytes = 64 << 10;
  o.seed = 9;
  o.threads = 2;
  data::run_pretrain(llama3(), files, dir.file("full"), o);

  o.threads = 1;
  o.stop_after_batches = 3;
  const json partial = data::run_pretrain(llama3(), files, dir.file("resumed"), o);
  EXPECT_FALSE(partial["finished"].get<bool>());
  EXPECT_FALSE(fs::exists(dir.file("resumed.idx"))) << "an unfinished run must not look finished";
  ASSERT_TRUE(fs::exists(dir.file("resumed.state.json")));
  // A run over the same prefix must not silently start again.
  o.stop_after_batches = 0;
  EXPECT_THROW(data::run_pretrain(llama3(), files, dir.file("resumed"), o), Error);
  // Resuming with other options is refused.
  data::PretrainOptions other = o;
  other.seed = 10;
  other.resume = true;
  EXPECT_THROW(data::run_pretrain(llama3(), files, dir.file("resumed"), other), Error);
  // A crash after the checkpoint leaves extra bytes in .bin: the resume cuts them off.
  { std::ofstream(dir.file("resumed.bin"), std::ios::binary | std::ios::app) << "garbage"; }
  o.resume = true;
  o.threads = 2;
  const json done = data::run_pretrain(llama3(), files, dir.file("resumed"), o);
  EXPECT_TRUE(done["finished"].get<bool>());
  EXPECT_EQ(slurp(dir.file("resumed.bin")), slurp(dir.file("full.bin")));
  EXPECT_EQ(slurp(dir.file("resumed.idx")), slurp(dir.file("full.idx")));
  json a = test::read_json(dir.file("full.report.json")), b = done;
  for (json* r : {&a, &b})
    for (const char* k : {"seconds", "input_mb_per_s", "tokens_per_s", "prefix"}) r->erase(k);
  EXPECT_EQ(a, b);
}

TEST(Pretrain, BadRecordsAreCountedWithFileAndLineAndStrictStopsAtTheFirst) {
  TempDir dir;
  const std::string path = dir.file("mixed.jsonl");
  spit(path, std::string(R"({"text": "good one", "meta": {"redpajama_set_name": "A"}})") + "\n" +  // 1
                 "{not json\n" +                                                                       // 2
                 R"({"text": "good two", "meta": {"redpajama_set_name": "A"}})" + "\n" +              // 3
                 R"({"meta": {"redpajama_set_name": "A"}})" + "\n" +                                 // 4
                 "{\"text\": \"bad \xff byte\", \"meta\": {\"redpajama_set_name\": \"A\"}}\n" +      // 5
                 R"({"text": "no source"})" + "\n" +                                                 // 6
                 "\n" +                                                                               // 7
                 R"([1, 2])" + "\n");                                                                // 8
  data::PretrainOptions o;
  o.seq_len = 64;
  const json r = data::run_pretrain(llama3(), {path}, dir.file("out"), o);
  const json& bad = r["bad_records"];
  EXPECT_EQ(bad["bad"].get<int>(), 5);
  EXPECT_EQ(bad["empty_records"].get<int>(), 1);
  const std::vector<std::string> want = {path + ":2: malformed JSON", path + ":4: no string field 'text'",
                                         path + ":5: invalid UTF-8 at byte 14",
                                         path + ":6: no string field 'meta.redpajama_set_name'", path + ":8: not a JSON object"};
  EXPECT_EQ(bad["examples"].get<std::vector<std::string>>(), want);
  EXPECT_EQ(r["documents_written"].get<int>(), 2);

  o.strict = true;
  try {
    data::run_pretrain(llama3(), {path}, dir.file("strict"), o);
    ADD_FAILURE() << "strict run went past a bad record";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ":2: malformed JSON");
  }
}

TEST(Pretrain, PresetAndOptionParsing) {
  data::PretrainOptions o;
  data::apply_preset("chatqa2", o);
  EXPECT_EQ(o.seq_len, 131072u);
  EXPECT_EQ(o.separator, "<s>");
  EXPECT_DOUBLE_EQ(o.short_keep, 0.1);
  EXPECT_EQ(o.mix.size(), 7u);
  EXPECT_NEAR(o.mix.at("RedPajamaBook"), 0.0414836, 1e-9);
  EXPECT_THROW(data::apply_preset("llama", o), Error);
  EXPECT_EQ(data::parse_count("10b"), 10'000'000'000ULL);
  EXPECT_EQ(data::parse_count("64k"), 64'000u);
  EXPECT_EQ(data::parse_count("131072"), 131072u);
  EXPECT_THROW(data::parse_count("12q"), Error);
  EXPECT_THROW(data::parse_count("-5"), Error);
  const auto mix = data::parse_mix("a=1,b.c=0.5");
  EXPECT_EQ(mix.size(), 2u);
  EXPECT_DOUBLE_EQ(mix.at("b.c"), 0.5);
  EXPECT_THROW(data::parse_mix("a=1,b"), Error);
  EXPECT_THROW(data::parse_mix("a=-1"), Error);
}

// ---- Long SFT ----

// NarrativeQA rows as HF distributes them: each story with a licence around its text, a summary
// carrying the answer, and `questions` questions, one row each.
std::string narrativeqa_rows(int questions) {
  std::vector<fs::path> texts;
  for (const auto& e : fs::directory_iterator(test::bundled("haystack"))) texts.push_back(e.path());
  std::sort(texts.begin(), texts.end());
  std::string out;
  for (size_t k = 0; k < texts.size(); ++k) {
    const std::string story = "GUTENBERG HEADER\n\n*** START ***\n\n" + slurp(texts[k].string()) + "\n\n*** END ***\n\nGUTENBERG FOOTER";
    const std::string summary = "SUMMARY-" + std::to_string(k) + ": the keeper of story " + std::to_string(k) + " is Ada" + std::to_string(k) + ".";
    for (int q = 0; q < questions; ++q)
      out += json{{"document",
                   {{"id", "story" + std::to_string(k)},
                    {"kind", "gutenberg"},
                    {"text", story},
                    {"start", "*** START ***"},
                    {"end", "*** END ***"},
                    {"summary", {{"text", summary}, {"title", "t"}}}}},
                  {"question", {{"text", "Who keeps story " + std::to_string(k) + "? (" + std::to_string(q) + ")"}}},
                  {"answers", {{{"text", "Ada" + std::to_string(k)}}, {{"text", "someone"}}}}}
                 .dump() +
             "\n";
  }
  return out;
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  for (const std::string& line : read_lines(path)) out.push_back(json::parse(line));
  return out;
}

TEST(LongSft, SamplesHaveTheRequestedLengthsTheSummaryInsideAndTheChatQaFormat) {
  TempDir dir;
  spit(dir.file("nqa.jsonl"), narrativeqa_rows(4) + "{\"document\": 5}\n");
  data::LongSftOptions o;
  o.min_tokens = 1200;
  o.max_tokens = 2600;
  o.seed = 4;
  const json r = data::run_long_sft(llama3(), {dir.file("nqa.jsonl")}, dir.file("sft.jsonl"), o);
  EXPECT_EQ(r["long"]["stories"].get<int>(), 7);
  EXPECT_EQ(r["bad_records"]["examples"][0].get<std::string>(), dir.file("nqa.jsonl") + ":29: not a NarrativeQA row (document.id, question.text, answers[0].text)");
  const auto samples = read_jsonl(dir.file("sft.jsonl"));
  ASSERT_GE(samples.size(), 20u);
  EXPECT_EQ(samples.size(), r["samples"].get<size_t>());
  std::set<size_t> summary_places;
  for (const json& s : samples) {
    const auto& m = s["messages"];
    ASSERT_EQ(m.size(), 3u);
    const std::string system = m[0]["content"], user = m[1]["content"], answer = m[2]["content"];
    const std::string prefix = std::string(qa::kChatQaSystem) + "\n\n";
    ASSERT_TRUE(system.starts_with(prefix));
    const std::string context = system.substr(prefix.size());
    const int k = std::stoi(s["id"].get<std::string>().substr(5));
    EXPECT_EQ(answer, "Ada" + std::to_string(k));
    EXPECT_TRUE(user.starts_with(std::string(qa::kChatQaInstruction) + " Who keeps story " + std::to_string(k) + "?")) << user;
    // The summary sits once, between paragraphs; the licence around the story never enters.
    const std::string summary = "SUMMARY-" + std::to_string(k) + ":";
    const size_t at = context.find(summary);
    ASSERT_NE(at, std::string::npos);
    EXPECT_EQ(context.find(summary, at + 1), std::string::npos);
    EXPECT_TRUE(at == 0 || context.compare(at - 2, 2, "\n\n") == 0);
    summary_places.insert(at * 10 / context.size());
    EXPECT_EQ(context.find("GUTENBERG"), std::string::npos);
    // Length: the ChatQA prompt and the answer, counted again here.
    const qa::RenderedPrompt p = qa::render_prompt(qa::Template::ChatQA, "", system, "", {{"user", user}}, "");
    const size_t tokens = llama3().encode(p.prefix + p.suffix, false).size() + llama3().encode(" " + answer, false).size();
    EXPECT_EQ(tokens, s["tokens"].get<size_t>());
    EXPECT_GE(tokens, o.min_tokens);
    EXPECT_LE(tokens, o.max_tokens);
  }
  EXPECT_GE(summary_places.size(), 4u) << "the summary should land at many depths";
}

TEST(LongSft, BlendRatiosHoldAndShortSetsAreConvertedToEitherFormat) {
  TempDir dir;
  spit(dir.file("nqa.jsonl"), narrativeqa_rows(6));
  std::string chat, nemo;
  for (int i = 0; i < 40; ++i)
    chat += json{{"messages", {{{"role", "user"}, {"content", "q" + std::to_string(i)}}}}, {"document", "doc " + std::to_string(i)},
                 {"answers", {"a" + std::to_string(i)}}}
                .dump() +
            "\n";
  for (int i = 0; i < 3; ++i) nemo += json{{"input", "in" + std::to_string(i)}, {"output", "out" + std::to_string(i)}}.dump() + "\n";
  nemo += "{\"input\": 1}\n";
  spit(dir.file("chat.jsonl"), chat);
  spit(dir.file("nemo.jsonl"), nemo);
  for (const auto format : {data::SftFormat::Messages, data::SftFormat::Nemo}) {
    data::LongSftOptions o;
    o.min_tokens = 800;
    o.max_tokens = 1600;
    o.format = format;
    o.blend = {{dir.file("chat.jsonl"), 0.3}, {dir.file("nemo.jsonl"), 0.1}};
    const json r = data::run_long_sft(llama3(), {dir.file("nqa.jsonl")}, dir.file("out.jsonl"), o);
    const auto samples = read_jsonl(dir.file("out.jsonl"));
    std::map<std::string, size_t> n;
    for (const json& s : samples) {
      const std::string source = s["source"];
      ++n[source];
      if (format == data::SftFormat::Nemo) {
        const std::string input = s["input"];
        EXPECT_TRUE(source == "nemo.jsonl" || input.starts_with("System: ")) << input;
        EXPECT_TRUE(source == "nemo.jsonl" || input.ends_with("\n\nAssistant:"));
        if (source == "chat.jsonl") {
          EXPECT_NE(input.find("\n\nUser: q"), std::string::npos);
        }
      } else {
        ASSERT_EQ(s["messages"].back()["role"], "assistant");
        if (source == "chat.jsonl") {
          const std::string system = s["messages"][0]["content"], question = s["messages"][1]["content"];
          EXPECT_TRUE(system.ends_with("\n\ndoc " + question.substr(1))) << system;
        }
      }
    }
    const double total = static_cast<double>(samples.size());
    ASSERT_GE(n["narrativeqa"], 30u);
    EXPECT_NEAR(static_cast<double>(n["narrativeqa"]) / total, 0.6, 1.0 / total);
    EXPECT_NEAR(static_cast<double>(n["chat.jsonl"]) / total, 0.3, 1.0 / total);
    EXPECT_NEAR(static_cast<double>(n["nemo.jsonl"]) / total, 0.1, 1.0 / total);
    EXPECT_GT(r["blend"][1]["passes"].get<double>(), 1.0) << "3 records were asked for more often than they exist";
    EXPECT_EQ(r["bad_records"]["bad"].get<int>(), 1);
  }
  data::LongSftOptions too_much;
  too_much.blend = {{dir.file("chat.jsonl"), 0.6}, {dir.file("nemo.jsonl"), 0.4}};
  EXPECT_THROW(data::run_long_sft(llama3(), {dir.file("nqa.jsonl")}, dir.file("x.jsonl"), too_much), Error);
  EXPECT_THROW(data::parse_blend("file.jsonl"), Error);
  EXPECT_EQ(data::parse_blend("a:b.jsonl:0.25").first, "a:b.jsonl");
}

// ---- Tokenizer training ----

TEST(BpeTrainer, MergesTheMostFrequentPairFirstWithTiesToTheSmallerPair) {
  TempDir dir;
  spit(dir.file("c.txt"), "aaabdaaabac");  // one pre-token: a a a b d a a a b a c
  data::BpeTrainOptions o;
  o.vocab_size = 256 + 3 + 2;
  const auto r = data::train_bpe({dir.file("c.txt")}, o);
  // (a,a) occurs 4 times; then (a,b) and (aa,a) twice each: the pair of smaller ids, (a,b), wins.
  const auto merges = r.tokenizer["model"]["merges"].get<std::vector<std::string>>();
  ASSERT_GE(merges.size(), 2u);
  EXPECT_EQ(merges[0], "a a");
  EXPECT_EQ(merges[1], "a b");
  EXPECT_EQ(r.tokenizer["added_tokens"][0]["content"], "<|begin_of_text|>");
  EXPECT_EQ(r.tokenizer["added_tokens"][0]["id"].get<int>(), static_cast<int>(r.tokenizer["model"]["vocab"].size()));
  o.vocab_size = 100;
  EXPECT_THROW(data::train_bpe({dir.file("c.txt")}, o), Error);
}

TEST(BpeTrainer, HuggingFaceTokenizersEncodeEveryTextExactlyAsLongqa) {
  const std::string modules = std::string(LONGQA_SOURCE_DIR) + "/tests/node/node_modules/tokenizers";
  ASSERT_TRUE(fs::exists(modules)) << "run scripts/setup.sh: it installs the tokenizers npm package into tests/node";
  TempDir dir;
  std::vector<std::string> corpus;
  for (const auto& e : fs::directory_iterator(test::bundled("haystack"))) corpus.push_back(e.path().string());
  std::sort(corpus.begin(), corpus.end());
  spit(dir.file("extra.txt"), "Grüße aus Köln — 東京 🙂 naïve café 12345 x=3.14\n\n\n  indented\ttabs   \r\nend\n");
  corpus.push_back(dir.file("extra.txt"));
  data::BpeTrainOptions o;
  o.vocab_size = 1500;
  const auto r = data::train_bpe(corpus, o);
  EXPECT_EQ(r.tokenizer["model"]["vocab"].size() + 2, 1500u);
  spit(dir.file("tokenizer.json"), r.tokenizer.dump());
  const auto tk = load_tokenizer(dir.file("tokenizer.json"));
  ASSERT_EQ(tk->vocab_size(), 1500);

  std::vector<std::string> texts = {"", "Hello world", "  leading and trailing  ", "Grüße 東京 🙂\n\n\nx",
                                    "<|begin_of_text|>a<|end_of_text|>", "numbers 1234567 and 3.14159", "tabs\tand\r\nnewlines\n\n",
                                    "words never seen: zyxwvut qqqq", slurp(test::bundled("haystack/GPL-3.txt"))};
  spit(dir.file("texts.json"), json(texts).dump());
  const std::string cmd = "node " + std::string(LONGQA_SOURCE_DIR) + "/tests/node/hf_tokenize.mjs " + dir.file("tokenizer.json") + " " +
                          dir.file("texts.json") + " > " + dir.file("hf.json");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const json hf = test::read_json(dir.file("hf.json"));
  ASSERT_EQ(hf.size(), texts.size());
  const int32_t bos = *tk->find("<|begin_of_text|>");
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int32_t> ids = tk->encode(texts[i], /*parse_special=*/true);
    EXPECT_EQ(hf[i]["plain"].get<std::vector<int32_t>>(), ids) << "text " << i;
    std::vector<int32_t> with_bos = {bos};
    with_bos.insert(with_bos.end(), ids.begin(), ids.end());
    EXPECT_EQ(hf[i]["special"].get<std::vector<int32_t>>(), with_bos) << "text " << i;
    EXPECT_EQ(hf[i]["decoded"].get<std::string>(), texts[i]);
    EXPECT_EQ(tk->decode(ids), texts[i]);
  }
  // The learned vocabulary compresses the text it was trained on.
  EXPECT_LT(static_cast<double>(tk->encode(texts.back()).size()), 0.4 * static_cast<double>(texts.back().size()));
}

// ---- The command line ----

TEST(DataCommand, TokenizerPretrainAndLongSftRunFromTheCommandLine) {
  TempDir dir;
  const std::string corpus = test::bundled("haystack/GPL-3.txt") + " " + test::bundled("haystack/LGPL-2.1.txt");
  auto r = test::run_longqa("data tokenizer --vocab 600 --out " + dir.file("tok.json") + " " + corpus);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("600 tokens"), std::string::npos) << r.out;

  const auto docs = make_corpus(2);
  spit(dir.file("c.jsonl"), jsonl(docs, 0, 40));
  r = test::run_longqa("data pretrain --tokenizer " + dir.file("tok.json") + " --seq-len 1024 --short-keep 0.5 --seed 1 --out " +
                       dir.file("p") + " " + dir.file("c.jsonl"));
  ASSERT_EQ(r.status, 0) << r.err;
  const Megatron m = read_megatron(dir.file("p"));
  EXPECT_EQ(m.dtype, 8) << "a 600-token vocabulary fits uint16";
  EXPECT_EQ(m.sizes.front(), 1024);
  const json report = test::read_json(dir.file("p.report.json"));
  EXPECT_EQ(report["tokens"].get<size_t>(), concat(m).size());
  EXPECT_GT(report["sources"]["C4"]["short_dropped"].get<int>(), 0);

  r = test::run_longqa("data pretrain --tokenizer " + dir.file("tok.json") + " --out " + dir.file("p") + " " + dir.file("c.jsonl"));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "longqa: error: " + dir.file("p") + ".bin/.idx exist; choose another --out\n");
  r = test::run_longqa("data pretrain --tokenizer " + dir.file("tok.json") + " --preset chatqa3 --out " + dir.file("q") + " " + dir.file("c.jsonl"));
  EXPECT_EQ(r.err, "longqa: error: unknown preset 'chatqa3' (known: chatqa2)\n");

  spit(dir.file("nqa.jsonl"), narrativeqa_rows(1));
  r = test::run_longqa("data long-sft --tokenizer " + dir.file("tok.json") + " --narrativeqa " + dir.file("nqa.jsonl") +
                       " --min-tokens 1000 --max-tokens 3000 --format nemo --out " + dir.file("s.jsonl"));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto samples = read_jsonl(dir.file("s.jsonl"));
  ASSERT_FALSE(samples.empty());
  EXPECT_TRUE(samples[0].contains("input") && samples[0].contains("output"));
}

}  // namespace
}  // namespace longqa
