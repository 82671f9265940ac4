// Store — the SQLite file that is the index's source of truth: files (path, content hash), their
// documents, chunks (byte offsets, pages, token counts, embedding) and the chunk text in an FTS5
// table for BM25. Written in WAL mode; every batch is one transaction, so a killed writer leaves
// every committed batch intact. One Store per thread; several processes may read while one writes.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "retrieval/chunker.h"
#include "retrieval/loaders.h"
#include "retrieval/sqlite.h"

namespace longqa::retrieval {

struct StoredChunk {
  int64_t id = 0;
  std::string doc;  // Document::name
  int page = 0;     // first page (1-based); 0 when the document has no pages
  int64_t begin = 0, end = 0, tokens = 0;
  std::string text;
};

struct StoredDocument {
  std::string name;
  std::string text;  // stitched back from its chunks (overlaps removed; skipped blank runs become "\n\n")
};

struct StoreStats {
  int64_t files = 0, documents = 0, chunks = 0, tokens = 0, embedded = 0;
};

struct Scored {
  int64_t id;
  double score;  // higher is better
};

class Store {
 public:
  Store(const std::string& path, bool read_only);

  Db& db() { return db_; }
  std::optional<std::string> meta(const std::string& key);
  void set_meta(const std::string& key, const std::string& value);

  std::unordered_map<std::string, std::string> file_hashes();  // path → SHA-256
  // Replaces whatever the index holds for file.path with these documents and chunks (parallel to
  // file.documents). Call inside a Transaction.
  void put_file(const LoadedFile& file, const std::vector<std::vector<Chunk>>& chunks);
  // Removes a file, or every file under a directory; returns how many files went.
  int64_t remove_path(const std::string& path);

  struct Pending {
    int64_t id;
    std::string text;
  };
  std::vector<Pending> pending_embeddings(int64_t limit);  // chunks without a vector, lowest id first
  // Stores a chunk's vector under a sequence number above every earlier one (embedding_seq() + 1 ...):
  // the VectorIndex catches up by seq. Call inside a Transaction.
  void set_embedding(int64_t id, std::span<const float> vector, int64_t seq);
  // Calls f(id, vector) for every chunk embedded after `seq`, in seq order; returns the last seq.
  template <class F>
  int64_t embeddings_after(int64_t seq, F&& f);
  int64_t embedding_seq();  // the highest seq ever given; never decreases

  std::vector<Scored> bm25(const std::string& query, int64_t k);
  // The chunks with these ids that still exist, in the order given.
  std::vector<StoredChunk> chunks(const std::vector<int64_t>& ids);
  StoreStats stats();
  std::vector<StoredDocument> documents();

 private:
  Db db_;
};

// The FTS5 MATCH expression for a free-text query: its words, quoted, OR-ed, common English stop
// words dropped (unless nothing else is left). Empty when the query has no words.
std::string fts_query(std::string_view text);

template <class F>
int64_t Store::embeddings_after(int64_t seq, F&& f) {
  Statement s(db_, "SELECT id, embedding, embedded_seq FROM chunks WHERE embedded_seq > ? ORDER BY embedded_seq");
  s.bind(1, seq);
  std::vector<float> v;  // SQLite's blob pointer need not be aligned for float: copy
  while (s.step()) {
    const auto blob = s.blob(1);
    v.resize(blob.size() / sizeof(float));
    std::memcpy(v.data(), blob.data(), v.size() * sizeof(float));
    f(s.integer(0), std::span<const float>(v));
    seq = s.integer(2);
  }
  return seq;
}

}  // namespace longqa::retrieval
