// VectorIndex — the dense half of retrieval: L2-normalised chunk embeddings in FAISS, searched by
// inner product (exact "flat" by default, HNSW for large corpora), labelled with chunk ids. It is a
// cache of the vectors the Store holds: saved as DIR/vectors-<seq>.faiss (written to a temporary file,
// synced, renamed), where seq is the Store's embedding sequence number it includes, so that whatever
// a killed writer left, the newest file plus the Store's later embeddings is the exact index. Vectors
// of removed chunks stay until the next rebuild; callers filter results against the Store. Not
// thread-safe for writes; concurrent searches are safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "retrieval/store.h"

namespace faiss {
struct Index;
}

namespace longqa::retrieval {

struct VectorIndexOptions {
  std::string kind = "flat";  // "flat" (exact) or "hnsw"
  int hnsw_m = 32;            // HNSW graph degree
  int ef_construction = 80;
  int ef_search = 128;
};

class VectorIndex {
 public:
  // Loads the newest saved index in dir if it matches dim and kind; otherwise starts empty (seq 0).
  VectorIndex(std::string dir, int dim, VectorIndexOptions options);
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  int dim() const { return dim_; }
  int64_t seq() const { return seq_; }  // Store embedding seq included
  int64_t size() const;                 // vectors held, removed chunks' included
  const VectorIndexOptions& options() const { return options_; }

  // n = ids.size() vectors of dim floats each; seq: the Store seq they bring the index up to.
  void add(std::span<const int64_t> ids, std::span<const float> vectors, int64_t seq);
  std::vector<Scored> search(std::span<const float> query, int64_t k) const;
  void clear();
  void set_ef_search(int ef);  // HNSW search breadth (recall against speed); no effect on flat
  void save();  // atomically replaces the saved index
  bool saved_current() const { return saved_seq_ == seq_; }

 private:
  std::unique_ptr<faiss::Index> make_empty() const;

  std::string dir_;
  int dim_;
  VectorIndexOptions options_;
  std::unique_ptr<faiss::Index> index_;
  int64_t seq_ = 0, saved_seq_ = -1;
};

}  // namespace longqa::retrieval
