// The retrieval index end to end through the command line: incremental add/rm/re-add, bad input,
// planted facts found by BM25, dense retrieval with the fixture embedder, reopening, and SIGKILL in
// the middle of `index add`.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "retrieval/store.h"
#include "test_util.h"

namespace longqa {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using test::run_longqa;

const char* kLicenses[] = {"GPL-3", "GPL-2", "LGPL-2.1", "Apache-2.0", "MPL-2.0", "GFDL-1.3", "Artistic"};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_text(const std::string& path, std::string_view text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
}
std::string q(const std::string& s) { return "'" + s + "'"; }

json run_json(const std::string& args) {
  const auto r = run_longqa(args);
  EXPECT_EQ(r.status, 0) << args << "\n" << r.err;
  return r.status == 0 ? json::parse(r.out) : json();
}
json stats(const std::string& index) { return run_json("index stats --json --index " + q(index)); }
json find_chunks(const std::string& index, const std::string& query, const std::string& extra = "") {
  return run_json("search --json --index " + q(index) + " " + extra + " " + q(query))["results"];
}

TEST(IndexCommand, IncrementalAddRemoveAndReAdd) {
  test::TempDir dir;
  const std::string docs = dir.file("docs"), index = dir.file("index");
  write_text(docs + "/a.txt", "The quokka is a small marsupial found on Rottnest Island.\n");
  write_text(docs + "/sub/b.md", "# Notes\n\nThe axolotl regrows its limbs.\n");
  write_text(docs + "/sub/c.txt", "Pangolins are covered in scales.\n");
  auto r = run_longqa("index add --index " + q(index) + " " + q(docs));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("indexed 3 files (3 new, 0 updated, 0 unchanged), 3 chunks"), std::string::npos) << r.out;
  EXPECT_EQ(stats(index)["chunks"], 3);

  r = run_longqa("index add --index " + q(index) + " " + q(docs));  // unchanged: a no-op
  EXPECT_NE(r.out.find("(0 new, 0 updated, 3 unchanged), 0 chunks"), std::string::npos) << r.out;
  EXPECT_EQ(stats(index)["chunks"], 3);

  write_text(docs + "/a.txt", "The numbat eats termites.\n");  // changed: its chunks are replaced
  r = run_longqa("index add --index " + q(index) + " " + q(docs + "/a.txt"));
  EXPECT_NE(r.out.find("(0 new, 1 updated, 0 unchanged), 1 chunks"), std::string::npos) << r.out;
  EXPECT_EQ(stats(index)["chunks"], 3);
  EXPECT_TRUE(find_chunks(index, "quokka").empty());
  auto hits = find_chunks(index, "numbat termites");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0]["doc"], fs::absolute(docs + "/a.txt").lexically_normal().string());
  EXPECT_EQ(hits[0]["text"], "The numbat eats termites.\n");
  EXPECT_TRUE(hits[0]["page"].is_null());

  r = run_longqa("index rm --index " + q(index) + " " + q(docs + "/sub"));  // a directory: all under it
  EXPECT_NE(r.out.find("removed 2 files"), std::string::npos) << r.out;
  EXPECT_EQ(stats(index)["files"], 1);
  EXPECT_TRUE(find_chunks(index, "axolotl").empty());

  r = run_longqa("index add --index " + q(index) + " " + q(docs));  // re-adding brings them back
  EXPECT_NE(r.out.find("(2 new, 0 updated, 1 unchanged)"), std::string::npos) << r.out;
  EXPECT_EQ(find_chunks(index, "axolotl limbs").size(), 1u);
}

TEST(IndexCommand, BadInputIsReportedPerFileAndTheRestIndexed) {
  test::TempDir dir;
  const std::string docs = dir.file("docs"), index = dir.file("index");
  write_text(docs + "/good.txt", "Capybaras are the largest living rodents.\n");
  write_text(docs + "/empty.txt", "");
  write_text(docs + "/binary.txt", std::string("\x7f" "ELF\0\0\x01", 7));
  write_text(docs + "/latin1.md", "caf\xE9 au lait\n");
  write_text(docs + "/broken.pdf", "%PDF-1.4\n1 0 obj << /Type /Catalog");
  write_text(docs + "/page.html", "<html><body><p>Okapis live in the Congo.</p><script>x()</script></body></html>");
  write_text(docs + "/records.jsonl", "{\"id\": \"r1\", \"text\": \"Tapirs have a prehensile snout.\"}\n{oops}\n");
  auto r = run_longqa("index add --index " + q(index) + " " + q(docs) + " " + q(dir.file("missing")));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("indexed 3 files"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("6 skipped"), std::string::npos) << r.out;
  for (const char* needle : {"empty.txt: empty file", "binary.txt: binary file", "latin1.md: not valid UTF-8",
                             "broken.pdf: corrupt or unreadable PDF", "records.jsonl:2: invalid JSON",
                             "missing: no such file or directory"})
    EXPECT_NE(r.err.find(needle), std::string::npos) << needle << "\n" << r.err;
  EXPECT_EQ(find_chunks(index, "capybaras").size(), 1u);
  EXPECT_EQ(find_chunks(index, "okapis congo").size(), 1u);
  const auto tapir = find_chunks(index, "tapirs snout");
  ASSERT_EQ(tapir.size(), 1u);
  EXPECT_EQ(tapir[0]["doc"], fs::absolute(docs + "/records.jsonl").lexically_normal().string() + "#r1");
  EXPECT_TRUE(find_chunks(index, "x()").empty());  // script text is not content

  // Options that cannot work are one error, not one per file.
  r = run_longqa("index add --index " + q(index) + " --chunk-tokens 100 --overlap 100 " + q(docs));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "longqa: error: --overlap must be at least 0 and less than --chunk-tokens\n");

  // Nothing usable at all is an error; the index is untouched.
  r = run_longqa("index add --index " + q(index) + " " + q(docs + "/empty.txt"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("nothing could be indexed"), std::string::npos) << r.err;
  EXPECT_EQ(stats(index)["files"], 3);
}

TEST(IndexCommand, Bm25FindsPlantedFactsInRealText) {
  test::TempDir dir;
  const std::string docs = dir.file("docs"), index = dir.file("index");
  std::vector<std::string> texts;
  for (const char* name : kLicenses) texts.push_back(read_text(test::bundled(std::string("haystack/") + name + ".txt")));
  // Facts with invented names, planted at paragraph ends; questions ask for them in other words.
  const char* first[] = {"Vel", "Mar", "Tor", "Quin", "Zeph", "Ost", "Bram", "Cal"};
  const char* second[] = {"dorin", "avex", "umbra", "ethis", "ovar"};
  const char* attribute[] = {"licence number", "source archive", "warranty code", "distribution key", "copyright vault"};
  struct Fact {
    std::string file, value, question;
  };
  std::vector<Fact> facts;
  std::mt19937 rng(7);
  for (int i = 0; i < 40; ++i) {
    const std::string name = std::string(first[i % 8]) + second[i / 8];
    const std::string attr = attribute[(i * 3) % 5];
    const std::string value = std::to_string(100000 + static_cast<int>(rng() % 900000));
    std::string& text = texts[static_cast<size_t>(i) % texts.size()];
    size_t at = text.find("\n\n", rng() % text.size());
    if (at == std::string::npos) at = text.size();
    text.insert(at, "\n\nThe " + attr + " assigned to the " + name + " project is " + value + ".");
    facts.push_back({std::string(kLicenses[static_cast<size_t>(i) % texts.size()]) + ".txt", value,
                     "Which " + attr + " was given to " + name + "?"});
  }
  for (size_t i = 0; i < texts.size(); ++i) write_text(docs + "/" + kLicenses[i] + ".txt", texts[i]);
  const auto r = run_longqa("index add --index " + q(index) + " " + q(docs));  // 1,200-token chunks, Llama-3
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_GT(stats(index)["chunks"].get<int>(), 25);

  int found = 0;
  for (const Fact& f : facts) {
    bool hit = false;
    for (const auto& result : find_chunks(index, f.question, "--k 5"))
      hit |= result["doc"].get<std::string>().ends_with("/" + f.file) &&
             result["text"].get<std::string>().find("project is " + f.value + ".") != std::string::npos;
    found += hit;
  }
  EXPECT_GE(found, 38) << found << " of 40 planted facts in the top 5";  // at least 95%
}

TEST(IndexCommand, PdfResultsCitePages) {
  test::TempDir dir;
  const std::string index = dir.file("index");
  // A two-page PDF written by hand (see test_retrieval.cpp for the general writer).
  auto page = [](const std::string& text) { return "BT /F1 12 Tf 72 720 Td (" + text + ") Tj ET"; };
  std::vector<std::string> obj = {"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 2 >>"};
  for (const std::string& text : {std::string("Page one is about walruses."), std::string("Page two is about narwhals.")}) {
    obj.push_back("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents " + std::to_string(obj.size() + 2) +
                  " 0 R /Resources << /Font << /F1 7 0 R >> >> >>");
    obj.push_back("<< /Length " + std::to_string(page(text).size()) + " >>\nstream\n" + page(text) + "\nendstream");
  }
  obj.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  std::string pdf = "%PDF-1.4\n", xref = "xref\n0 8\n0000000000 65535 f \n";
  for (size_t i = 0; i < obj.size(); ++i) {
    char line[32];
    std::snprintf(line, sizeof line, "%010zu 00000 n \n", pdf.size());
    xref += line;
    pdf += std::to_string(i + 1) + " 0 obj\n" + obj[i] + "\nendobj\n";
  }
  pdf += xref + "trailer\n<< /Size 8 /Root 1 0 R >>\nstartxref\n" + std::to_string(pdf.size()) + "\n%%EOF\n";
  write_text(dir.file("animals.pdf"), pdf);
  ASSERT_EQ(run_longqa("index add --index " + q(index) + " --chunk-tokens 8 " + q(dir.file("animals.pdf"))).status, 0);
  const auto hits = find_chunks(index, "narwhals", "--k 1");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0]["page"], 2);
  EXPECT_EQ(find_chunks(index, "walruses", "--k 1")[0]["page"], 1);
}

TEST(IndexCommand, DenseRetrievalWithTheFixtureEmbedderReopensIdentically) {
  test::TempDir dir;
  const std::string index = dir.file("index"), docs = dir.file("docs");
  for (const char* name : {"GPL-3", "MPL-2.0"})  // the first 12 KB of each: enough chunks, quick under ASan
    write_text(docs + "/" + name + ".txt", read_text(test::bundled(std::string("haystack/") + name + ".txt")).substr(0, 12000));
  const std::string embed = test::model_dir("tiny-mistral");
  auto r = run_longqa("index add --index " + q(index) + " --embed-model " + q(embed) + " --chunk-tokens 400 " + q(docs));
  ASSERT_EQ(r.status, 0) << r.err;
  const json st = stats(index);
  EXPECT_EQ(st["embedded"], st["chunks"]);
  EXPECT_EQ(st["dim"], 128);
  EXPECT_EQ(st["pooling"], "last");
  EXPECT_TRUE(st["vectors_current"].get<bool>());

  const std::string query = "termination of the licence and patent rights";
  const json dense = find_chunks(index, query, "--retriever dense --k 5");
  ASSERT_EQ(dense.size(), 5u);
  for (size_t i = 1; i < dense.size(); ++i) EXPECT_LE(dense[i]["score"].get<double>(), dense[i - 1]["score"].get<double>());
  EXPECT_LE(dense[0]["score"].get<double>(), 1.0 + 1e-5);  // cosine of unit vectors
  const json hybrid = find_chunks(index, query, "--k 5");     // hybrid is the default with vectors
  ASSERT_EQ(hybrid.size(), 5u);
  // RRF: the best fused score lies between first in one list (1/61) and first in both (2/61).
  EXPECT_GE(hybrid[0]["score"].get<double>(), 1.0 / 61 - 1e-12);
  EXPECT_LE(hybrid[0]["score"].get<double>(), 2.0 / 61 + 1e-12);

  // A new process answers the same; so does one that must rebuild the FAISS file from SQLite.
  EXPECT_EQ(find_chunks(index, query, "--retriever dense --k 5"), dense);
  for (const auto& e : fs::directory_iterator(index))
    if (e.path().extension() == ".faiss") fs::remove(e.path());
  EXPECT_EQ(find_chunks(index, query, "--retriever dense --k 5"), dense);

  // The embedder is fixed for the index's life.
  r = run_longqa("index add --index " + q(index) + " --embed-model " + q(test::model_dir("tiny-llama3")) + " " + q(docs));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("the index was built with embedder"), std::string::npos) << r.err;

  // Removing a file removes its chunks from dense results too (their vectors are compacted away).
  r = run_longqa("index rm --index " + q(index) + " " + q(docs + "/GPL-3.txt"));
  ASSERT_EQ(r.status, 0) << r.err;
  const json after = find_chunks(index, query, "--retriever dense --k 5");
  ASSERT_EQ(after.size(), 5u);
  for (const auto& hit : after) EXPECT_TRUE(hit["doc"].get<std::string>().ends_with("/MPL-2.0.txt")) << hit["doc"];
  EXPECT_TRUE(stats(index)["vectors_current"].get<bool>());
  EXPECT_EQ(stats(index)["embedded"], stats(index)["chunks"]);

  // HNSW answers the same top results on a corpus this small.
  const std::string hnsw = dir.file("hnsw");
  ASSERT_EQ(run_longqa("index add --index " + q(hnsw) + " --dense-index hnsw --embed-model " + q(embed) +
                       " --chunk-tokens 400 " + q(docs)).status, 0);
  const json approx = find_chunks(hnsw, query, "--retriever dense --k 5");
  ASSERT_EQ(approx.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(approx[i]["text"], dense[i]["text"]);
}

TEST(IndexCommand, ASecondWriterIsRefused) {
  test::TempDir dir;
  const std::string index = dir.file("index");
  write_text(dir.file("a.txt"), "hello\n");
  ASSERT_EQ(run_longqa("index add --index " + q(index) + " " + q(dir.file("a.txt"))).status, 0);
  const int fd = ::open((index + "/lock").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  const auto r = run_longqa("index add --index " + q(index) + " " + q(dir.file("a.txt")));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("another longqa process is writing this index"), std::string::npos) << r.err;
  EXPECT_EQ(find_chunks(index, "hello").size(), 1u);  // readers are not blocked
  ::close(fd);
}

// Starts longqa in the background (exec'd by the shell, so the pid is longqa's own).
pid_t spawn_longqa(const std::string& args) {
  const std::string cmd = "exec " + std::string(LONGQA_BIN) + " " + args + " >/dev/null 2>&1";
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Polls the index's SQLite file until done(stats) or the process exits; then SIGKILLs it.
bool kill_when(pid_t pid, const std::string& index, const std::function<bool(const retrieval::StoreStats&)>& done) {
  for (int i = 0; i < 6000; ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return false;  // finished before the condition held
    try {
      retrieval::Store store(index + "/index.sqlite", /*read_only=*/true);
      if (done(store.stats())) break;
    } catch (const std::exception&) {
      // not created yet
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

TEST(IndexCommand, SigkillDuringEmbeddingKeepsCommittedBatchesAndRerunFinishes) {
  test::TempDir dir;
  const std::string docs = dir.file("docs"), index = dir.file("index"), clean = dir.file("clean");
  for (const char* name : {"GPL-3", "Apache-2.0"})
    write_text(docs + "/" + name + ".txt", read_text(test::bundled(std::string("haystack/") + name + ".txt")));
  const std::string args = "--embed-model " + q(test::model_dir("tiny-mistral")) + " --chunk-tokens 64 -t 1 " + q(docs);
  const pid_t pid = spawn_longqa("index add --index " + q(index) + " " + args);
  ASSERT_TRUE(kill_when(pid, index, [](const retrieval::StoreStats& s) { return s.embedded >= 64; }));  // one committed batch

  const json killed = stats(index);
  EXPECT_GE(killed["embedded"].get<int>(), 64);
  EXPECT_LT(killed["embedded"].get<int>(), killed["chunks"].get<int>()) << "the kill came after the work was done";
  EXPECT_EQ(killed["files"], 2);
  const std::string query = "conveying verbatim copies";
  EXPECT_EQ(find_chunks(index, query, "--retriever dense --k 3").size(), 3u);  // opens and answers

  const auto r = run_longqa("index add --index " + q(index) + " " + args);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("(0 new, 0 updated, 2 unchanged)"), std::string::npos) << r.out;
  const json resumed = stats(index);
  EXPECT_EQ(resumed["embedded"], resumed["chunks"]);
  EXPECT_EQ(resumed["chunks"], killed["chunks"]);
  EXPECT_TRUE(resumed["vectors_current"].get<bool>());

  // The same as an index built without interruption.
  ASSERT_EQ(run_longqa("index add --index " + q(clean) + " " + args).status, 0);
  EXPECT_EQ(stats(clean)["chunks"], resumed["chunks"]);
  const json a = find_chunks(index, query, "--retriever dense --k 5"), b = find_chunks(clean, query, "--retriever dense --k 5");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["text"], b[i]["text"]);
    EXPECT_NEAR(a[i]["score"].get<double>(), b[i]["score"].get<double>(), 1e-6);
  }
}

TEST(IndexCommand, SigkillDuringLexicalIngestionKeepsCommittedFiles) {
  test::TempDir dir;
  const std::string docs = dir.file("docs"), index = dir.file("index");
  const std::string gpl = read_text(test::bundled("haystack/GPL-3.txt"));
  for (int i = 0; i < 400; ++i)
    write_text(docs + "/f" + std::to_string(1000 + i) + ".txt", "Document number " + std::to_string(i) + ".\n\n" + gpl);
  const std::string args = "--chunk-tokens 256 -t 1 " + q(docs);
  const pid_t pid = spawn_longqa("index add --index " + q(index) + " " + args);
  ASSERT_TRUE(kill_when(pid, index, [](const retrieval::StoreStats& s) { return s.files >= 32; }));
  const json killed = stats(index);
  EXPECT_GE(killed["files"].get<int>(), 32);
  EXPECT_LT(killed["files"].get<int>(), 400) << "the kill came after the work was done";
  EXPECT_EQ(killed["files"].get<int>() % 32, 0) << "files are committed in whole batches";
  EXPECT_EQ(find_chunks(index, "number 0", "--retriever bm25 --k 1").size(), 1u);

  const auto r = run_longqa("index add --index " + q(index) + " " + args);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(stats(index)["files"], 400);
  EXPECT_NE(r.out.find(std::to_string(killed["files"].get<int>()) + " unchanged"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace longqa
