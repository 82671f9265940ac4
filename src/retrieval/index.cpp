#include "retrieval/index.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <filesystem>
#include <thread>

#include "retrieval/fusion.h"
#include "util/error.h"
#include "util/progress.h"

namespace longqa::retrieval {
namespace fs = std::filesystem;
namespace {

std::string db_file(const std::string& dir) { return (fs::path(dir) / "index.sqlite").string(); }

uint64_t size_or_zero(const fs::path& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

int hardware_threads(int requested) {
  return requested > 0 ? requested : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

std::string absolute_path(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

// One file's work, done in parallel with others: load, compare its hash, chunk.
struct FileWork {
  std::string path;
  std::optional<LoadedFile> file;
  std::vector<std::vector<Chunk>> chunks;
  std::string error;
  bool unchanged = false;
};

// A setting fixed when the index was first given it: a later different value is an error.
std::string settle(Store& store, const std::string& key, const std::optional<std::string>& requested,
                   const std::string& fallback, const std::string& dir) {
  const auto recorded = store.meta(key);
  if (recorded && requested && *recorded != *requested)
    throw Error(dir + ": the index was built with " + key + " '" + *recorded + "', not '" + *requested +
                "' (use a new index directory)");
  return recorded ? *recorded : requested.value_or(fallback);
}

}  // namespace

Index::Index(const std::string& dir, Mode mode) : dir_(dir) {
  if (mode == Mode::Write) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw Error(dir_ + ": cannot create the index directory: " + ec.message());
    const std::string lock = (fs::path(dir_) / "lock").string();
    lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) throw Error(lock + ": cannot open: " + std::strerror(errno));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(lock_fd_);
      throw Error(dir_ + ": another longqa process is writing this index");
    }
  } else if (!fs::exists(db_file(dir_))) {
    throw Error(dir_ + ": no index here (create one with `longqa index add --index " + dir_ + " PATH...`)");
  }
  store_ = std::make_unique<Store>(db_file(dir_), mode == Mode::Read);
}

Index::~Index() {
  store_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

AddReport Index::add(const std::vector<std::string>& paths, const AddOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  if (o.chunk.chunk_tokens < 1) throw Error("--chunk-tokens must be at least 1");
  if (o.chunk.overlap < 0 || o.chunk.overlap >= o.chunk.chunk_tokens)
    throw Error("--overlap must be at least 0 and less than --chunk-tokens");
  const int threads = hardware_threads(o.threads);
  Store& store = *store_;
  AddReport report;

  // The embedder: the one the index was built with, or the one given now (which then becomes it).
  std::unique_ptr<Embedder> embedder;
  std::optional<std::string> embed_model = o.embed_model ? std::optional(absolute_path(*o.embed_model)) : std::nullopt;
  if (const auto recorded = store.meta("embed_model")) {
    if (embed_model && *embed_model != *recorded)
      throw Error(dir_ + ": the index was built with embedder " + *recorded + ", not " + *embed_model +
                  " (use a new index directory)");
    embed_model = recorded;
  }
  if (embed_model) {
    EmbedderSpec spec;
    spec.model = *embed_model;
    spec.pooling = parse_pooling(settle(store, "pooling", o.pooling, "last", dir_));
    spec.query_instruction = settle(store, "query_instruction", o.query_instruction, spec.query_instruction, dir_);
    const std::string kind = settle(store, "dense_kind", o.dense_kind, "flat", dir_);
    if (kind != "flat" && kind != "hnsw") throw Error("--dense-index must be flat or hnsw, not '" + kind + "'");
    embedder = std::make_unique<Embedder>(spec, threads);
    const std::string dim = std::to_string(embedder->dim());
    settle(store, "embed_dim", dim, dim, dir_);
    Transaction t(store.db());
    store.set_meta("embed_model", spec.model);
    store.set_meta("pooling", pooling_name(spec.pooling));
    store.set_meta("query_instruction", spec.query_instruction);
    store.set_meta("dense_kind", kind);
    store.set_meta("embed_dim", dim);
    t.commit();
  }

  // The tokenizer that counts chunk tokens.
  std::unique_ptr<Tokenizer> own_tokenizer;
  const Tokenizer* tokenizer = nullptr;
  std::string tokenizer_name;
  if (o.tokenizer) {
    tokenizer_name = absolute_path(*o.tokenizer);
  } else if (embedder) {
    tokenizer_name = embedder->spec().model;
    tokenizer = &embedder->tokenizer();
    if (o.chunk.chunk_tokens > embedder->spec().max_tokens)
      throw Error("--chunk-tokens " + std::to_string(o.chunk.chunk_tokens) + " exceeds the embedder's limit of " +
                  std::to_string(embedder->spec().max_tokens) + " tokens");
  } else {
    tokenizer_name = store.meta("tokenizer").value_or(o.default_tokenizer);
  }
  if (!tokenizer) {
    own_tokenizer = load_tokenizer(tokenizer_name);
    tokenizer = own_tokenizer.get();
  }
  store.set_meta("tokenizer", tokenizer_name);

  const std::vector<std::string> files = collect_files(paths, report.problems);
  const std::unordered_map<std::string, std::string> hashes = store.file_hashes();
  uint64_t total_bytes = 0;
  for (const std::string& f : files) total_bytes += size_or_zero(f);
  // Workers load and chunk files in any order, at most `window` files ahead of the writer; the writer
  // (this thread) commits them in path order, `batch` files per transaction.
  const size_t n = files.size();
  const auto batch = static_cast<size_t>(std::max<int64_t>(1, o.batch_files));
  const size_t window = 4 * batch;
  std::vector<FileWork> work(n);
  std::vector<char> ready(n, 0);
  std::mutex mutex;
  std::condition_variable work_ready, space_free;
  std::atomic<size_t> next_file{0};
  size_t written = 0;
  bool stop = false;
  auto worker = [&] {
    EncodeCache cache;  // this worker's tokenizer memo, kept across files
    for (size_t i; (i = next_file++) < n;) {
      {
        std::unique_lock lock(mutex);
        space_free.wait(lock, [&] { return stop || i < written + window; });
        if (stop) return;
      }
      FileWork& w = work[i];
      w.path = files[i];
      try {
        w.file = load_file(w.path, o.loader);
        const auto it = hashes.find(w.path);
        w.unchanged = it != hashes.end() && it->second == w.file->hash;
        if (!w.unchanged)
          for (const Document& d : w.file->documents) w.chunks.push_back(chunk_document(d, *tokenizer, o.chunk, &cache));
      } catch (const std::exception& e) {
        w.error = e.what();
        w.file.reset();
      }
      {
        const std::lock_guard lock(mutex);
        ready[i] = 1;
      }
      work_ready.notify_all();
    }
  };
  std::vector<std::thread> workers;
  const struct Stopper {  // on every exit, error or not: release and join the workers
    std::mutex& m;
    bool& stop;
    std::condition_variable& cv;
    std::vector<std::thread>& threads;
    ~Stopper() {
      {
        const std::lock_guard lock(m);
        stop = true;
      }
      cv.notify_all();
      for (std::thread& t : threads) t.join();
    }
  } stopper{mutex, stop, space_free, workers};
  for (int t = 0; t < std::min<int>(threads, static_cast<int>(std::max<size_t>(n, 1))); ++t) workers.emplace_back(worker);

  Progress progress("indexing", total_bytes, /*bytes=*/true);
  for (size_t i = 0; i < n;) {
    Transaction t(store.db());
    for (const size_t end = std::min(n, i + batch); i < end; ++i) {
      {
        std::unique_lock lock(mutex);
        work_ready.wait(lock, [&] { return ready[i] != 0; });
      }
      FileWork w = std::move(work[i]);
      if (!w.file) {
        report.problems.push_back(w.error);
        continue;
      }
      report.bytes += w.file->bytes;
      for (const std::string& warning : w.file->warnings) report.problems.push_back(warning);
      if (w.unchanged) {
        ++report.files_unchanged;
        continue;
      }
      store.put_file(*w.file, w.chunks);
      ++(hashes.contains(w.path) ? report.files_updated : report.files_added);
      for (const auto& c : w.chunks) report.chunks_added += static_cast<int64_t>(c.size());
    }
    t.commit();
    {
      const std::lock_guard lock(mutex);
      written = i;
    }
    space_free.notify_all();
    progress.update(report.bytes, files[i - 1]);
  }
  if (embedder) embed_pending(*embedder, report, o);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

void Index::embed_pending(Embedder& embedder, AddReport& report, const AddOptions& o) {
  Store& store = *store_;
  auto vectors = open_vectors();
  int64_t pending = 0;
  {
    Statement s(store.db(), "SELECT count(*) FROM chunks WHERE embedding IS NULL");
    s.step();
    pending = s.integer(0);
  }
  Progress progress("embedding", static_cast<uint64_t>(pending), /*bytes=*/false);
  auto last_save = std::chrono::steady_clock::now();
  std::vector<int64_t> ids;
  std::vector<float> flat;
  while (true) {
    const auto batch = store.pending_embeddings(std::max<int64_t>(1, o.batch_embeddings));
    if (batch.empty()) break;
    ids.clear();
    flat.clear();
    for (const auto& chunk : batch) {
      std::vector<float> v;
      try {
        v = embedder.document(chunk.text);
      } catch (const Error& e) {
        throw Error("chunk " + std::to_string(chunk.id) + ": " + e.what());
      }
      ids.push_back(chunk.id);
      flat.insert(flat.end(), v.begin(), v.end());
    }
    const size_t dim = static_cast<size_t>(embedder.dim());
    Transaction t(store.db());
    int64_t seq = store.embedding_seq();
    for (size_t i = 0; i < ids.size(); ++i)
      store.set_embedding(ids[i], std::span<const float>(flat).subspan(i * dim, dim), ++seq);
    t.commit();
    vectors->add(ids, flat, seq);
    report.embedded += static_cast<int64_t>(ids.size());
    progress.update(static_cast<uint64_t>(report.embedded));
    if (std::chrono::steady_clock::now() - last_save > std::chrono::duration<double>(o.save_vectors_seconds)) {
      vectors->save();
      last_save = std::chrono::steady_clock::now();
    }
  }
  compact_and_save(*vectors);
}

std::unique_ptr<VectorIndex> Index::open_vectors() {
  const auto dim = store_->meta("embed_dim");
  if (!dim) throw Error(dir_ + ": the index has no dense vectors (add documents with --embed-model)");
  VectorIndexOptions options;
  options.kind = store_->meta("dense_kind").value_or("flat");
  auto vectors = std::make_unique<VectorIndex>(dir_, std::stoi(*dim), options);
  catch_up(*vectors);
  return vectors;
}

void Index::catch_up(VectorIndex& vectors) {
  std::vector<int64_t> ids;
  std::vector<float> flat;
  const int64_t last = store_->embeddings_after(vectors.seq(), [&](int64_t id, std::span<const float> v) {
    ids.push_back(id);
    flat.insert(flat.end(), v.begin(), v.end());
    if (ids.size() >= 4096) {
      vectors.add(ids, flat, vectors.seq());
      ids.clear();
      flat.clear();
    }
  });
  vectors.add(ids, flat, last);
}

void Index::compact_and_save(VectorIndex& vectors) {
  const int64_t live = store_->stats().embedded;
  if (vectors.size() - live > vectors.size() / 20) {
    // Removed chunks' vectors are over 5% of the index: rebuild it from the Store.
    vectors.clear();
    catch_up(vectors);
  }
  if (!vectors.saved_current()) vectors.save();
}

int64_t Index::remove(const std::vector<std::string>& paths) {
  int64_t removed = 0;
  {
    Transaction t(store_->db());
    for (const std::string& p : paths) removed += store_->remove_path(absolute_path(p));
    t.commit();
  }
  if (removed > 0 && store_->meta("embed_dim")) compact_and_save(*open_vectors());
  return removed;
}

std::vector<SearchResult> Index::search(const std::string& query, const SearchOptions& o) {
  Store& store = *store_;
  const bool has_vectors = store.meta("embed_model").has_value();
  std::string retriever = o.retriever;
  if (retriever == "auto") retriever = has_vectors ? "hybrid" : "bm25";
  if (retriever != "bm25" && retriever != "dense" && retriever != "hybrid")
    throw Error("--retriever must be bm25, dense or hybrid, not '" + retriever + "'");
  if (retriever != "bm25" && !has_vectors)
    throw Error(dir_ + ": the index has no dense vectors (add documents with --embed-model, or use --retriever bm25)");
  if (o.k < 1) throw Error("--k must be at least 1");
  const int64_t n = retriever == "hybrid" ? std::max(o.k, o.candidates) : o.k;

  std::vector<Scored> lexical, dense;
  if (retriever != "dense") lexical = store.bm25(query, n);
  if (retriever != "bm25") {
    EmbedderSpec spec;
    spec.model = o.embed_model ? absolute_path(*o.embed_model) : *store.meta("embed_model");
    spec.pooling = parse_pooling(store.meta("pooling").value_or("last"));
    spec.query_instruction = store.meta("query_instruction").value_or(spec.query_instruction);
    Embedder embedder(spec, hardware_threads(o.threads));
    const std::vector<float> q = embedder.query(query);
    const auto vectors = open_vectors();
    if (static_cast<int64_t>(q.size()) != vectors->dim())
      throw Error(spec.model + ": embeds in " + std::to_string(q.size()) + " dimensions, the index holds " +
                  std::to_string(vectors->dim()));
    // Vectors of removed chunks may still be in the index: ask for enough to fill n with live ones.
    const int64_t dead = std::max<int64_t>(0, vectors->size() - store.stats().embedded);
    Statement exists(store.db(), "SELECT 1 FROM chunks WHERE id = ?");
    for (const Scored& s : vectors->search(q, n + dead)) {
      if (static_cast<int64_t>(dense.size()) == n) break;
      exists.bind(1, s.id);
      if (exists.step()) dense.push_back(s);
      exists.reset();
    }
  }
  std::vector<Scored> ranked;
  if (retriever == "bm25") ranked = lexical;
  else if (retriever == "dense") ranked = dense;
  else ranked = reciprocal_rank_fusion({{lexical, o.bm25_weight}, {dense, o.dense_weight}}, o.k);
  if (static_cast<int64_t>(ranked.size()) > o.k) ranked.resize(static_cast<size_t>(o.k));

  std::vector<int64_t> ids;
  for (const Scored& s : ranked) ids.push_back(s.id);
  std::vector<StoredChunk> chunks = store.chunks(ids);
  std::vector<SearchResult> out;
  for (size_t i = 0, j = 0; i < ranked.size() && j < chunks.size(); ++i)
    if (chunks[j].id == ranked[i].id) out.push_back({std::move(chunks[j++]), ranked[i].score});
  return out;
}

IndexStats Index::stats() {
  IndexStats s;
  Store& store = *store_;
  s.store = store.stats();
  s.tokenizer = store.meta("tokenizer").value_or("");
  s.embed_model = store.meta("embed_model").value_or("");
  s.pooling = store.meta("pooling").value_or("");
  s.dense_kind = store.meta("dense_kind").value_or("");
  s.dim = std::stoll(store.meta("embed_dim").value_or("0"));
  s.embedding_seq = store.embedding_seq();
  s.db_bytes = size_or_zero(db_file(dir_)) + size_or_zero(db_file(dir_) + "-wal");
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("vectors-", 0) == 0 && name.ends_with(".faiss")) {
      const int64_t seq = std::stoll(name.substr(8, name.size() - 14));
      if (seq >= s.vectors_seq) s.vectors_seq = seq, s.vectors_bytes = size_or_zero(e.path());
    }
  }
  return s;
}

}  // namespace longqa::retrieval
