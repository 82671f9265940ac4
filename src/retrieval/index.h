// Index — a retrieval index in a directory: DIR/index.sqlite (the Store: documents, chunks, BM25,
// embeddings) and DIR/vectors-<seq>.faiss (the dense VectorIndex derived from it). `add` loads files,
// chunks them with the model's tokenizer and commits them in batches, then embeds the chunks that lack
// a vector, in batches; a killed `add` keeps every committed batch and a rerun finishes the job.
// One writer at a time (an advisory lock on DIR/lock); readers may search while it writes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "retrieval/chunker.h"
#include "retrieval/embedder.h"
#include "retrieval/loaders.h"
#include "retrieval/store.h"
#include "retrieval/vector_index.h"

namespace longqa::retrieval {

struct AddOptions {
  std::optional<std::string> embed_model;  // default: the one the index was built with, if any
  std::optional<std::string> tokenizer;    // chunk-token counting; default: embed model's, then recorded
  std::string default_tokenizer;           // used when nothing else names one (the bundled Llama-3)
  std::optional<std::string> pooling;      // "last" (default) or "mean"; fixed at the first embedding
  std::optional<std::string> query_instruction;
  std::optional<std::string> dense_kind;  // "flat" (default) or "hnsw"; fixed at the first embedding
  ChunkOptions chunk;
  LoaderOptions loader;
  int threads = 0;                 // 0: all hardware threads
  int64_t batch_files = 32;        // files loaded in parallel and committed together
  int64_t batch_embeddings = 64;   // chunks embedded per committed transaction
  double save_vectors_seconds = 30;  // how often a long embedding run saves the FAISS file
};

struct AddReport {
  int64_t files_added = 0, files_updated = 0, files_unchanged = 0, chunks_added = 0, embedded = 0;
  uint64_t bytes = 0;                 // bytes of files read
  std::vector<std::string> problems;  // one line per file or record skipped
  double seconds = 0;
};

struct SearchOptions {
  int64_t k = 5;
  std::string retriever = "auto";  // bm25, dense, hybrid; auto = hybrid when the index has vectors
  double bm25_weight = 1.0, dense_weight = 1.0;
  int64_t candidates = 50;  // per retriever, before fusion
  std::optional<std::string> embed_model;  // overrides the recorded path (same model moved)
  int threads = 0;
};

struct SearchResult {
  StoredChunk chunk;
  double score;
};

struct IndexStats {
  StoreStats store;
  std::string tokenizer, embed_model, pooling, dense_kind;
  int64_t dim = 0, vectors_seq = 0, embedding_seq = 0;
  uint64_t db_bytes = 0, vectors_bytes = 0;
};

class Index {
 public:
  enum class Mode { Read, Write };
  Index(const std::string& dir, Mode mode);
  ~Index();

  AddReport add(const std::vector<std::string>& paths, const AddOptions& options);
  int64_t remove(const std::vector<std::string>& paths);  // files removed
  std::vector<SearchResult> search(const std::string& query, const SearchOptions& options);
  IndexStats stats();
  std::vector<StoredDocument> documents() { return store_->documents(); }

 private:
  void embed_pending(Embedder& embedder, AddReport& report, const AddOptions& options);
  // The saved vector index brought up to date with the Store.
  std::unique_ptr<VectorIndex> open_vectors();
  void catch_up(VectorIndex& vectors);
  void compact_and_save(VectorIndex& vectors);

  std::string dir_;
  int lock_fd_ = -1;
  std::unique_ptr<Store> store_;
};

}  // namespace longqa::retrieval
