#include "retrieval/vector_index.h"

#include <fcntl.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "util/error.h"

namespace longqa::retrieval {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPrefix = "vectors-";
constexpr const char* kSuffix = ".faiss";

std::string file_name(int64_t seq) {
  char name[64];
  std::snprintf(name, sizeof name, "%s%012lld%s", kPrefix, static_cast<long long>(seq), kSuffix);
  return name;
}

// Saved indexes in dir, newest (highest seq) first.
std::vector<std::pair<int64_t, fs::path>> saved_files(const std::string& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(kPrefix, 0) != 0 || !name.ends_with(kSuffix)) continue;
    const std::string digits = name.substr(std::strlen(kPrefix), name.size() - std::strlen(kPrefix) - std::strlen(kSuffix));
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    out.emplace_back(std::stoll(digits), e.path());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

faiss::IndexHNSW* hnsw_of(faiss::Index* index) {
  auto* map = dynamic_cast<faiss::IndexIDMap*>(index);
  return map ? dynamic_cast<faiss::IndexHNSW*>(map->index) : nullptr;
}

}  // namespace

VectorIndex::VectorIndex(std::string dir, int dim, VectorIndexOptions options)
    : dir_(std::move(dir)), dim_(dim), options_(std::move(options)) {
  if (options_.kind != "flat" && options_.kind != "hnsw")
    throw Error("dense index kind must be 'flat' or 'hnsw', not '" + options_.kind + "'");
  for (const auto& [seq, path] : saved_files(dir_)) {
    try {
      std::unique_ptr<faiss::Index> loaded(faiss::read_index(path.c_str()));
      const bool is_hnsw = hnsw_of(loaded.get()) != nullptr;
      if (loaded->d != dim_ || !dynamic_cast<faiss::IndexIDMap*>(loaded.get()) || is_hnsw != (options_.kind == "hnsw"))
        break;  // built for another embedder or kind: rebuild from the Store
      index_ = std::move(loaded);
      seq_ = saved_seq_ = seq;
    } catch (const faiss::FaissException&) {
      continue;  // a damaged file: try the previous one, or rebuild
    }
    break;
  }
  if (!index_) index_ = make_empty();
  if (auto* h = hnsw_of(index_.get())) h->hnsw.efSearch = options_.ef_search;
}

VectorIndex::~VectorIndex() = default;

std::unique_ptr<faiss::Index> VectorIndex::make_empty() const {
  faiss::Index* inner = nullptr;
  if (options_.kind == "hnsw") {
    auto* h = new faiss::IndexHNSWFlat(dim_, options_.hnsw_m, faiss::METRIC_INNER_PRODUCT);
    h->hnsw.efConstruction = options_.ef_construction;
    h->hnsw.efSearch = options_.ef_search;
    inner = h;
  } else {
    inner = new faiss::IndexFlatIP(dim_);
  }
  auto map = std::make_unique<faiss::IndexIDMap>(inner);
  map->own_fields = true;
  return map;
}

int64_t VectorIndex::size() const { return index_->ntotal; }

void VectorIndex::add(std::span<const int64_t> ids, std::span<const float> vectors, int64_t seq) {
  if (vectors.size() != ids.size() * static_cast<size_t>(dim_))
    throw Error("vector index: " + std::to_string(vectors.size()) + " floats for " + std::to_string(ids.size()) +
                " vectors of dimension " + std::to_string(dim_));
  if (!ids.empty()) index_->add_with_ids(static_cast<faiss::Index::idx_t>(ids.size()), vectors.data(), ids.data());
  seq_ = std::max(seq_, seq);
}

std::vector<Scored> VectorIndex::search(std::span<const float> query, int64_t k) const {
  if (query.size() != static_cast<size_t>(dim_)) throw Error("vector index: query of the wrong dimension");
  k = std::min<int64_t>(k, index_->ntotal);
  std::vector<Scored> out;
  if (k <= 0) return out;
  std::vector<float> scores(static_cast<size_t>(k));
  std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(k));
  index_->search(1, query.data(), k, scores.data(), labels.data());
  for (int64_t i = 0; i < k; ++i)
    if (labels[static_cast<size_t>(i)] >= 0) out.push_back({labels[static_cast<size_t>(i)], scores[static_cast<size_t>(i)]});
  return out;
}

void VectorIndex::set_ef_search(int ef) {
  options_.ef_search = ef;
  if (auto* h = hnsw_of(index_.get())) h->hnsw.efSearch = ef;
}

void VectorIndex::clear() {
  index_ = make_empty();
  seq_ = 0;
}

void VectorIndex::save() {
  const std::string final_path = (fs::path(dir_) / file_name(seq_)).string();
  const std::string tmp_path = final_path + ".tmp";
  {
    std::FILE* f = std::fopen(tmp_path.c_str(), "wb");
    if (!f) throw Error(tmp_path + ": cannot create: " + std::strerror(errno));
    try {
      faiss::FileIOWriter writer(f);
      faiss::write_index(index_.get(), &writer);
    } catch (const faiss::FaissException& e) {
      std::fclose(f);
      fs::remove(tmp_path);
      throw Error(tmp_path + ": cannot write the vector index: " + e.what());
    }
    const bool ok = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
    std::fclose(f);
    if (!ok) {
      fs::remove(tmp_path);
      throw Error(tmp_path + ": write failed: " + std::strerror(errno));
    }
  }
  fs::rename(tmp_path, final_path);
  fsync_path(dir_, O_RDONLY | O_DIRECTORY);
  saved_seq_ = seq_;
  for (const auto& [seq, path] : saved_files(dir_)) {
    std::error_code ec;
    if (path != final_path) fs::remove(path, ec);
  }
}

}  // namespace longqa::retrieval
