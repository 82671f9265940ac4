// Retrieval building blocks: hashing, UTF-8 validation, the loaders, the chunker, the SQLite store,
// the FTS5 query builder and rank fusion.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/tokenizer.h"
#include "retrieval/chunker.h"
#include "retrieval/fusion.h"
#include "retrieval/loaders.h"
#include "retrieval/store.h"
#include "test_util.h"
#include "util/error.h"
#include "util/sha256.h"
#include "util/utf8.h"

namespace longqa {
namespace {
using namespace retrieval;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_text(const std::string& path, std::string_view text) {
  std::ofstream(path, std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
}

// A minimal valid PDF: one page per entry, each line of a page drawn with Helvetica.
std::string make_pdf(const std::vector<std::vector<std::string>>& pages) {
  std::vector<std::string> objects;
  const size_t n = pages.size();
  std::string kids;
  for (size_t i = 0; i < n; ++i) kids += std::to_string(3 + 2 * i) + " 0 R ";
  objects.push_back("<< /Type /Catalog /Pages 2 0 R >>");
  objects.push_back("<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(n) + " >>");
  const size_t font = 3 + 2 * n;
  for (size_t i = 0; i < n; ++i) {
    objects.push_back("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents " + std::to_string(4 + 2 * i) +
                      " 0 R /Resources << /Font << /F1 " + std::to_string(font) + " 0 R >> >> >>");
    std::string content = "BT /F1 12 Tf 14 TL 72 720 Td\n";
    for (const std::string& line : pages[i]) {
      std::string escaped;
      for (char c : line) {
        if (c == '(' || c == ')' || c == '\\') escaped += '\\';
        escaped += c;
      }
      content += "(" + escaped + ") Tj T*\n";
    }
    content += "ET";
    objects.push_back("<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream");
  }
  objects.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  std::string pdf = "%PDF-1.4\n";
  std::vector<size_t> offsets;
  for (size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(pdf.size());
    pdf += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
  }
  const size_t xref = pdf.size();
  pdf += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
  char line[32];
  for (size_t off : offsets) {
    std::snprintf(line, sizeof line, "%010zu 00000 n \n", off);
    pdf += line;
  }
  pdf += "trailer\n<< /Size " + std::to_string(objects.size() + 1) + " /Root 1 0 R >>\nstartxref\n" +
         std::to_string(xref) + "\n%%EOF\n";
  return pdf;
}

TEST(Sha256, MatchesFips180Vectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // One million 'a's, fed in uneven pieces that straddle the 64-byte blocks.
  Sha256 pieces;
  const std::string a(1100, 'a');
  size_t fed = 0;
  for (size_t step = 1; fed < 1000000; step = step % 999 + 7) {
    const size_t n = std::min(step, 1000000 - fed);
    pieces.update(std::string_view(a).substr(0, n));
    fed += n;
  }
  EXPECT_EQ(pieces.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Utf8, FirstInvalidRejectsIllFormedSequences) {
  EXPECT_EQ(utf8::first_invalid("plain ascii"), std::string_view::npos);
  EXPECT_EQ(utf8::first_invalid("h\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80"), std::string_view::npos);
  EXPECT_EQ(utf8::first_invalid("ab\xC0\x80"), 2u);          // overlong NUL
  EXPECT_EQ(utf8::first_invalid("a\xE0\x80\xAF"), 1u);       // overlong '/'
  EXPECT_EQ(utf8::first_invalid("\xED\xA0\x80"), 0u);        // surrogate U+D800
  EXPECT_EQ(utf8::first_invalid("x\xF4\x90\x80\x80"), 1u);   // above U+10FFFF
  EXPECT_EQ(utf8::first_invalid("xy\xE4\xB8"), 2u);          // truncated
  EXPECT_EQ(utf8::first_invalid("\x80"), 0u);                // stray continuation
  EXPECT_EQ(utf8::first_invalid("ok\xFF"), 2u);
}

TEST(Loaders, HtmlKeepsVisibleTextInOrder) {
  const std::string html =
      "<!doctype html><html><head><title>The Title</title><style>p{color:red}</style>"
      "<script>var hidden = 1;</script></head><body><h1>Heading</h1><p>First   paragraph,\n spread "
      "over lines &amp; entities&nbsp;here.</p><noscript>no js</noscript><ul><li>one</li><li>two</li></ul>"
      "<pre>keep\n  this</pre><p>caf\xC3\xA9 \xE4\xB8\xAD</p><script>more()</script></body></html>";
  const std::string text = html_to_text(html, "t.html");
  EXPECT_EQ(text,
            "The Title\n\nHeading\n\nFirst paragraph, spread over lines & entities\xC2\xA0here.\n\none\ntwo\n\n"
            "keep\n  this\n\ncaf\xC3\xA9 \xE4\xB8\xAD");
}

TEST(Loaders, HtmlFollowsDeclaredLegacyCharset) {
  // Latin-1 bytes (invalid UTF-8) decoded by the page's own <meta charset>.
  const std::string html = "<html><head><meta charset=\"iso-8859-1\"></head><body><p>caf\xE9</p></body></html>";
  EXPECT_EQ(html_to_text(html, "latin1.html"), "caf\xC3\xA9");
}

TEST(Loaders, PdfTextPerPageWithOffsets) {
  test::TempDir dir;
  const std::string path = dir.file("two.pdf");
  write_text(path, make_pdf({{"Alpha page one.", "Second line."}, {"Beta page two (with parens)."}}));
  const LoadedFile f = load_file(path, {});
  ASSERT_EQ(f.documents.size(), 1u);
  const Document& d = f.documents[0];
  ASSERT_EQ(d.page_starts.size(), 2u);
  EXPECT_EQ(d.page_starts[0], 0u);
  const std::string page1 = d.text.substr(0, d.page_starts[1]);
  const std::string page2 = d.text.substr(d.page_starts[1]);
  EXPECT_NE(page1.find("Alpha page one."), std::string::npos) << d.text;
  EXPECT_NE(page1.find("Second line."), std::string::npos);
  EXPECT_NE(page2.find("Beta page two (with parens)."), std::string::npos);
  EXPECT_EQ(page1.find("Beta"), std::string::npos);
}

TEST(Loaders, BadFilesRaiseOneClearError) {
  test::TempDir dir;
  const auto expect_error = [&](const std::string& name, std::string_view bytes, const std::string& needle) {
    const std::string path = dir.file(name);
    write_text(path, bytes);
    try {
      load_file(path, {});
      ADD_FAILURE() << name << " loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("empty.txt", "", "empty file");
  expect_error("blank.md", " \n\t\n", "no text");
  expect_error("nul.txt", std::string_view("ab\0cd", 5), "binary");
  expect_error("latin1.txt", "caf\xE9", "not valid UTF-8 (byte offset 3)");
  expect_error("fake.pdf", "this is not a pdf", "not a PDF");
  const std::string pdf = make_pdf({{"Some text on a page."}});
  expect_error("truncated.pdf", std::string_view(pdf).substr(0, 60), "PDF");
  expect_error("nothing.jsonl", "{\"x\": 1}\nnot json\n", "no usable JSONL records");
  EXPECT_THROW(load_file(dir.file("missing.txt"), {}), Error);
}

TEST(Loaders, JsonlOneDocumentPerRecordBadLinesReported) {
  test::TempDir dir;
  const std::string path = dir.file("docs.jsonl");
  write_text(path,
             "{\"id\": \"a1\", \"body\": \"first record\"}\n\n{\"body\": \"no id\"}\n{broken\n"
             "{\"id\": 7, \"body\": \"numeric id\"}\n{\"id\": \"x\", \"other\": 1}\n");
  LoaderOptions o;
  o.jsonl_text_field = "body";
  const LoadedFile f = load_file(path, o);
  ASSERT_EQ(f.documents.size(), 3u);
  EXPECT_EQ(f.documents[0].name, path + "#a1");
  EXPECT_EQ(f.documents[0].text, "first record");
  EXPECT_EQ(f.documents[1].name, path + "#3");  // named by its line number
  EXPECT_EQ(f.documents[2].name, path + "#7");
  ASSERT_EQ(f.warnings.size(), 2u);
  EXPECT_NE(f.warnings[0].find(path + ":4: invalid JSON"), std::string::npos) << f.warnings[0];
  EXPECT_NE(f.warnings[1].find(path + ":6: no string field 'body'"), std::string::npos) << f.warnings[1];
}

TEST(Loaders, CollectFilesWalksDirectories) {
  test::TempDir dir;
  std::filesystem::create_directories(dir.file("sub/deeper"));
  std::filesystem::create_directories(dir.file(".git"));
  for (const char* name : {"a.txt", "sub/b.md", "sub/deeper/c.HTML", "sub/image.png", ".hidden.txt", ".git/d.txt"})
    write_text(dir.file(name), "x");
  std::vector<std::string> problems;
  const auto files = collect_files({dir.file(""), dir.file("sub/image.png"), dir.file("nope")}, problems);
  const std::vector<std::string> expect = {dir.file("a.txt"), dir.file("sub/b.md"), dir.file("sub/deeper/c.HTML"),
                                           dir.file("sub/image.png")};
  EXPECT_EQ(files, expect);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("nope: no such file"), std::string::npos);
}

class ChunkerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { llama3_ = load_tokenizer(test::bundled("llama3-tokenizer/tokenizer.json")).release(); }
  static void TearDownTestSuite() { delete llama3_; }
  static Tokenizer* llama3_;
};
Tokenizer* ChunkerTest::llama3_ = nullptr;

TEST_F(ChunkerTest, ChunksTileTheTextWithinTheTokenBudget) {
  const Document doc{"gpl", read_text(test::bundled("haystack/GPL-3.txt")), {}};
  const auto total = static_cast<int64_t>(llama3_->encode(doc.text, false).size());
  const auto chunks = chunk_document(doc, *llama3_, {.chunk_tokens = 300});
  ASSERT_GT(chunks.size(), 20u);
  int64_t tokens = 0;
  size_t at_sentence_or_paragraph = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    EXPECT_LE(c.tokens, 300);
    if (i + 1 < chunks.size()) {
      EXPECT_GE(c.tokens, 150) << "chunk " << i;  // breaks are sought in the last half only
    }
    if (i > 0) {
      EXPECT_EQ(c.begin, chunks[i - 1].end);
    }
    tokens += c.tokens;
    const std::string text = doc.text.substr(c.begin, c.end - c.begin);
    const auto retokenized = static_cast<int64_t>(llama3_->encode(text, false).size());
    EXPECT_NEAR(static_cast<double>(retokenized), static_cast<double>(c.tokens), 2.0);
    const size_t last = text.find_last_not_of(" \n\t\r\"')");
    if (i + 1 == chunks.size() || text.back() == '\n' || std::string(".!?:;").find(text[last]) != std::string::npos)
      ++at_sentence_or_paragraph;
  }
  EXPECT_EQ(chunks.front().begin, 0u);
  EXPECT_EQ(chunks.back().end, doc.text.size());
  EXPECT_EQ(tokens, total);
  EXPECT_GE(at_sentence_or_paragraph * 10, chunks.size() * 9) << at_sentence_or_paragraph << " of " << chunks.size();
}

TEST_F(ChunkerTest, OverlapRepeatsTheTailOfThePreviousChunk) {
  const Document doc{"apache", read_text(test::bundled("haystack/Apache-2.0.txt")), {}};
  const auto chunks = chunk_document(doc, *llama3_, {.chunk_tokens = 200, .overlap = 50});
  ASSERT_GT(chunks.size(), 5u);
  for (size_t i = 1; i < chunks.size(); ++i) {
    EXPECT_LT(chunks[i].begin, chunks[i - 1].end);
    EXPECT_GT(chunks[i].begin, chunks[i - 1].begin);
    // The overlap stays within 50 tokens.
    const std::string shared = doc.text.substr(chunks[i].begin, chunks[i - 1].end - chunks[i].begin);
    EXPECT_LE(llama3_->encode(shared, false).size(), 52u);
  }
  EXPECT_EQ(chunks.back().end, doc.text.size());
}

TEST_F(ChunkerTest, NeverSplitsACharacterAndCitesPages) {
  // Chinese without spaces or punctuation forces hard cuts; byte-fallback tokens can end mid-character.
  std::string text;
  for (int i = 0; i < 400; ++i) text += "\xE4\xB8\xAD\xE6\x96\x87\xF0\x9F\x98\x80\xE9\xBE\x98";
  Document doc{"zh", text, {0, text.size() / 2}};
  const auto chunks = chunk_document(doc, *llama3_, {.chunk_tokens = 37});
  ASSERT_GT(chunks.size(), 10u);
  for (const Chunk& c : chunks) {
    EXPECT_LE(c.tokens, 37);
    EXPECT_EQ(utf8::first_invalid(std::string_view(text).substr(c.begin, c.end - c.begin)), std::string_view::npos);
    EXPECT_EQ(c.page_first, c.begin < text.size() / 2 ? 1 : 2);
    EXPECT_GE(c.page_last, c.page_first);
  }
  EXPECT_EQ(chunks.front().page_first, 1);
  EXPECT_EQ(chunks.back().page_last, 2);
}

TEST_F(ChunkerTest, SentencePieceOffsetsAccountForTheDummyPrefix) {
  const auto spm = load_tokenizer(test::model_dir("tiny-mistral"));
  const std::string text = "Hello world.  Two  spaces\nand a newline. Caf\xC3\xA9!";
  const auto ids = spm->encode(text, false);
  const auto ends = token_ends(text, ids, *spm);
  ASSERT_EQ(ends.size(), ids.size());
  EXPECT_EQ(ends.back(), text.size());
  for (size_t i = 1; i < ends.size(); ++i) EXPECT_GE(ends[i], ends[i - 1]);
  const auto chunks = chunk_document({"t", text, {}}, *spm, {.chunk_tokens = 8});
  EXPECT_EQ(chunks.front().begin, 0u);
  EXPECT_EQ(chunks.back().end, text.size());
}

TEST(FtsQuery, QuotesWordsAndDropsStopWords) {
  EXPECT_EQ(fts_query("What is the launch code of Project Orion?"), "\"launch\" OR \"code\" OR \"project\" OR \"orion\"");
  EXPECT_EQ(fts_query("the of"), "\"the\" OR \"of\"");  // nothing but stop words: keep them
  EXPECT_EQ(fts_query("  ?!  "), "");
  // FTS5 syntax in the query is just words.
  EXPECT_EQ(fts_query("a\" OR NEAR(x* AND -y) col:z"), "\"near\" OR \"x\" OR \"y\" OR \"col\" OR \"z\"");
  EXPECT_EQ(fts_query("caf\xC3\xA9 \xE4\xB8\xAD"), "\"caf\xC3\xA9\" OR \"\xE4\xB8\xAD\"");
}

TEST(Fusion, ReciprocalRankFusion) {
  const std::vector<Scored> a = {{1, 9}, {2, 8}, {3, 7}};
  const std::vector<Scored> b = {{3, 0.9}, {4, 0.8}, {1, 0.7}};
  const auto fused = reciprocal_rank_fusion({{a, 1.0}, {b, 1.0}}, 10);
  ASSERT_EQ(fused.size(), 4u);
  EXPECT_EQ(fused[0].id, 1);  // 1/61 + 1/63
  EXPECT_NEAR(fused[0].score, 1.0 / 61 + 1.0 / 63, 1e-12);
  EXPECT_EQ(fused[1].id, 3);  // 1/63 + 1/61: tie with 1, lower id first
  EXPECT_EQ(fused[2].id, 2);  // 1/62
  EXPECT_EQ(fused[3].id, 4);
  const auto weighted = reciprocal_rank_fusion({{a, 0.0}, {b, 2.0}}, 2);
  ASSERT_EQ(weighted.size(), 2u);
  EXPECT_EQ(weighted[0].id, 3);
  EXPECT_EQ(weighted[1].id, 4);
}

TEST(Store, ReplacesAndRemovesFilesWithTheirChunks) {
  test::TempDir dir;
  Store store(dir.file("s.sqlite"), false);
  const auto put = [&](const std::string& path, const std::string& text) {
    LoadedFile f;
    f.path = path;
    f.hash = sha256_hex(text);
    f.bytes = text.size();
    f.documents.push_back({path, text, {}});
    Transaction t(store.db());
    store.put_file(f, {{Chunk{0, text.size(), 3, 0, 0}}});
    t.commit();
  };
  put("/d/a_1%.txt", "zebra giraffe");
  put("/d/a*.txt", "lion tiger");
  put("/d/ab/c.txt", "zebra lion");
  put("/dx/e.txt", "zebra");
  EXPECT_EQ(store.stats().chunks, 4);
  put("/d/a_1%.txt", "okapi");  // replaced, not added
  EXPECT_EQ(store.stats().files, 4);
  EXPECT_EQ(store.stats().chunks, 4);
  EXPECT_EQ(store.bm25("giraffe", 5).size(), 0u);
  ASSERT_EQ(store.bm25("okapi", 5).size(), 1u);
  EXPECT_EQ(store.chunks({store.bm25("okapi", 5)[0].id})[0].doc, "/d/a_1%.txt");
  // GLOB metacharacters in names are literal; a directory removes only what is under it.
  EXPECT_EQ(store.remove_path("/d/a*.txt"), 1);
  EXPECT_EQ(store.remove_path("/d/ab"), 1);
  EXPECT_EQ(store.remove_path("/d/"), 1);
  EXPECT_EQ(store.stats().files, 1);
  EXPECT_EQ(store.bm25("zebra", 5).size(), 1u);  // only /dx/e.txt is left, and its text still matches
  EXPECT_EQ(store.bm25("lion", 5).size(), 0u);
}

}  // namespace
}  // namespace longqa
