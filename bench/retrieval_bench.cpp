// Retrieval benchmarks: BM25 query latency at a million chunks, HNSW recall and latency against exact
// search at a million vectors, and embedding throughput. Prints figures; see BENCHMARKS.md.
//   longqa-bench-retrieval bm25  INDEX_DIR CORPUS_DIR [CHUNKS=1000000] [QUERIES=1000]
//   longqa-bench-retrieval hnsw  [VECTORS=1000000] [DIM=256] [QUERIES=1000] [M=32] [EF_CONSTRUCTION=80]
//   longqa-bench-retrieval embed MODEL CORPUS_DIR [CHUNKS=32] [CHUNK_TOKENS=1200] [THREADS=0]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "retrieval/chunker.h"
#include "retrieval/embedder.h"
#include "retrieval/index.h"
#include "retrieval/store.h"
#include "retrieval/vector_index.h"
#include "util/sha256.h"
#include "util/utf8.h"

namespace fs = std::filesystem;
using namespace longqa;
using namespace longqa::retrieval;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// The corpus's .txt files, concatenated (valid UTF-8 only).
std::string read_corpus(const std::string& dir, size_t max_bytes) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::string all;
  for (const fs::path& p : files) {
    std::ifstream in(p, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (utf8::first_invalid(text) == std::string::npos) all += text + "\n\n";
    if (all.size() >= max_bytes) break;
  }
  return all;
}

void print_latency(const char* what, const std::vector<double>& ms) {
  double sum = 0;
  for (double m : ms) sum += m;
  std::printf("%-28s p50 %8.3f ms   p99 %8.3f ms   mean %8.3f ms   (%zu queries)\n", what, percentile(ms, 0.5),
              percentile(ms, 0.99), sum / static_cast<double>(ms.size()), ms.size());
}

// Fills a Store with `chunks` chunks of ~400 bytes cut from the corpus at spaces (cycling through it).
void build_bm25_index(const std::string& index_dir, const std::string& corpus, int64_t chunks) {
  fs::create_directories(index_dir);
  Store store(index_dir + "/index.sqlite", false);
  if (store.stats().chunks >= chunks) return;
  const auto start = Clock::now();
  size_t pos = 0;
  uint64_t bytes = 0;
  for (int64_t made = 0, file = 0; made < chunks; ++file) {
    LoadedFile f;
    f.path = "/bench/file" + std::to_string(file);
    Document doc{f.path, {}, {}};
    std::vector<Chunk> cs;
    for (int i = 0; i < 1000 && made < chunks; ++i, ++made) {
      if (pos + 800 >= corpus.size()) pos = 0;
      size_t end = corpus.find(' ', pos + 400);
      while (end < corpus.size() && (static_cast<uint8_t>(corpus[end]) & 0xC0) == 0x80) ++end;
      const size_t begin = doc.text.size();
      doc.text.append(corpus, pos, end - pos);
      cs.push_back({begin, doc.text.size(), 100, 0, 0});
      pos = end;
    }
    bytes += doc.text.size();
    f.hash = sha256_hex(doc.text);
    f.documents.push_back(std::move(doc));
    Transaction t(store.db());
    store.put_file(f, {cs});
    t.commit();
  }
  std::printf("built %lld chunks (%.0f MB of text) in %.1f s: %.0f chunks/s\n", static_cast<long long>(chunks),
              static_cast<double>(bytes) / 1e6, seconds_since(start), static_cast<double>(chunks) / seconds_since(start));
}

int bench_bm25(const std::string& index_dir, const std::string& corpus_dir, int64_t chunks, int queries) {
  const std::string corpus = read_corpus(corpus_dir, 64'000'000);
  build_bm25_index(index_dir, corpus, chunks);
  // Queries: 2-5 words of 4+ letters taken from random places of the corpus.
  std::mt19937_64 rng(42);
  std::vector<std::string> qs;
  while (static_cast<int>(qs.size()) < queries) {
    size_t p = rng() % corpus.size();
    const int words = 2 + static_cast<int>(rng() % 4);
    std::string q;
    for (int w = 0; w < words && p < corpus.size();) {
      const size_t b = corpus.find_first_of("abcdefghijklmnopqrstuvwxyz", p);
      if (b == std::string::npos) break;
      size_t e = b;
      while (e < corpus.size() && std::isalpha(static_cast<unsigned char>(corpus[e]))) ++e;
      if (e - b >= 4) q += (w++ ? " " : "") + corpus.substr(b, e - b);
      p = e + 1 + rng() % 40;
    }
    if (!q.empty()) qs.push_back(q);
  }
  Index index(index_dir, Index::Mode::Read);
  std::printf("index: %lld chunks, %.0f MB\n", static_cast<long long>(index.stats().store.chunks),
              static_cast<double>(index.stats().db_bytes) / 1e6);
  SearchOptions o;
  o.retriever = "bm25";
  for (const std::string& q : std::vector<std::string>(qs.begin(), qs.begin() + std::min<size_t>(20, qs.size())))
    index.search(q, o);  // warm the page cache
  std::vector<double> ms;
  size_t hits = 0;
  for (const std::string& q : qs) {
    const auto t = Clock::now();
    hits += index.search(q, o).size();
    ms.push_back(seconds_since(t) * 1e3);
  }
  print_latency("bm25 top-5", ms);
  std::printf("results per query: %.2f; peak RSS %.0f MB\n", static_cast<double>(hits) / static_cast<double>(qs.size()), peak_rss_mb());
  return 0;
}

int bench_hnsw(int64_t n, int dim, int queries, int m, int ef_construction) {
  // Clustered unit vectors (embeddings cluster by topic; uniform noise would be HNSW's worst case).
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  const int clusters = 1000;
  std::vector<float> centers(static_cast<size_t>(clusters) * dim);
  for (float& x : centers) x = normal(rng);
  auto make = [&](int64_t count) {
    std::vector<float> v(static_cast<size_t>(count) * dim);
    for (int64_t i = 0; i < count; ++i) {
      const float* c = &centers[(rng() % clusters) * static_cast<size_t>(dim)];
      float* x = &v[static_cast<size_t>(i) * dim];
      double norm = 0;
      for (int d = 0; d < dim; ++d) {
        x[d] = c[d] + 0.7f * normal(rng);
        norm += static_cast<double>(x[d]) * x[d];
      }
      for (int d = 0; d < dim; ++d) x[d] = static_cast<float>(x[d] / std::sqrt(norm));
    }
    return v;
  };
  const std::vector<float> data = make(n), query = make(queries);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = i + 1;
  const std::string dir = (fs::temp_directory_path() / "longqa-bench-hnsw").string();
  fs::create_directories(dir);

  VectorIndex flat(dir, dim, {.kind = "flat"});
  flat.add(ids, data, 1);
  std::vector<std::vector<Scored>> truth;
  std::vector<double> ms;
  for (int q = 0; q < queries; ++q) {
    const auto t = Clock::now();
    truth.push_back(flat.search(std::span<const float>(query).subspan(static_cast<size_t>(q) * dim, dim), 10));
    ms.push_back(seconds_since(t) * 1e3);
  }
  std::printf("%lld vectors of %d dimensions (%.0f MB)\n", static_cast<long long>(n), dim,
              static_cast<double>(data.size()) * 4 / 1e6);
  print_latency("exact (flat) top-10", ms);

  for (int ef : {16, 32, 64, 128, 256}) {
    static std::unique_ptr<VectorIndex> hnsw;
    if (!hnsw) {
      const auto t = Clock::now();
      hnsw = std::make_unique<VectorIndex>(dir, dim, VectorIndexOptions{.kind = "hnsw", .hnsw_m = m, .ef_construction = ef_construction});
      hnsw->add(ids, data, 1);
      std::printf("hnsw M=%d efConstruction=%d: built in %.1f s (%.0f vectors/s)\n", m, ef_construction, seconds_since(t),
                  static_cast<double>(n) / seconds_since(t));
    }
    VectorIndex& h = *hnsw;
    h.set_ef_search(ef);
    ms.clear();
    int64_t found = 0;
    for (int q = 0; q < queries; ++q) {
      const auto t = Clock::now();
      const auto r = h.search(std::span<const float>(query).subspan(static_cast<size_t>(q) * dim, dim), 10);
      ms.push_back(seconds_since(t) * 1e3);
      for (const Scored& s : r)
        for (const Scored& g : truth[static_cast<size_t>(q)]) found += s.id == g.id;
    }
    char label[64];
    std::snprintf(label, sizeof label, "hnsw efSearch=%d top-10", ef);
    print_latency(label, ms);
    std::printf("%-28s recall@10 %.4f\n", "", static_cast<double>(found) / (10.0 * queries));
  }
  std::printf("peak RSS %.0f MB\n", peak_rss_mb());
  fs::remove_all(dir);
  return 0;
}

int bench_embed(const std::string& model, const std::string& corpus_dir, int chunks, int chunk_tokens, int threads) {
  Embedder embedder(EmbedderSpec{.model = model}, threads);
  const std::string corpus = read_corpus(corpus_dir, 4'000'000);
  const auto pieces = chunk_document({"corpus", corpus, {}}, embedder.tokenizer(), {.chunk_tokens = chunk_tokens});
  embedder.document(corpus.substr(pieces[0].begin, pieces[0].end - pieces[0].begin));  // warm-up
  int64_t tokens = 0;
  const auto t = Clock::now();
  for (int i = 0; i < chunks && i < static_cast<int>(pieces.size()); ++i) {
    embedder.document(corpus.substr(pieces[static_cast<size_t>(i)].begin, pieces[static_cast<size_t>(i)].end - pieces[static_cast<size_t>(i)].begin));
    tokens += pieces[static_cast<size_t>(i)].tokens + 2;  // BOS and EOS
  }
  const double s = seconds_since(t);
  std::printf("embedded %d chunks of <= %d tokens: %.1f tokens/s, %.2f chunks/s; peak RSS %.0f MB\n", chunks, chunk_tokens,
              static_cast<double>(tokens) / s, chunks / s, peak_rss_mb());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  auto arg = [&](size_t i, long long fallback) { return a.size() > i ? std::stoll(a[i]) : fallback; };
  try {
    if (a.size() >= 3 && a[0] == "bm25") return bench_bm25(a[1], a[2], arg(3, 1000000), static_cast<int>(arg(4, 1000)));
    if (!a.empty() && a[0] == "hnsw")
      return bench_hnsw(arg(1, 1000000), static_cast<int>(arg(2, 256)), static_cast<int>(arg(3, 1000)),
                        static_cast<int>(arg(4, 32)), static_cast<int>(arg(5, 80)));
    if (a.size() >= 3 && a[0] == "embed")
      return bench_embed(a[1], a[2], static_cast<int>(arg(3, 32)), static_cast<int>(arg(4, 1200)), static_cast<int>(arg(5, 0)));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "longqa-bench-retrieval: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: see the header of bench/retrieval_bench.cpp\n");
  return 2;
}
