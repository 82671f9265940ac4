// MappedFile — the bytes of a whole file, read-only, for the life of the object (RAII). Two ways to
// hold them (FileResidency): a shared mapping of the page cache (zero copy, instant, shared between
// processes), or a private copy read into memory backed by transparent huge pages. Model weights take
// the copy by default: decode streams every weight once per token, and with 4 KiB pages the TLB
// misses stall the streaming loads and drop their software prefetches (a 1 GiB Q8_0 matrix streams at
// 9.6 GB/s on one core with 4 KiB pages, 14.7 GB/s with 2 MiB pages; BENCHMARKS.md). Thread-safe to
// read after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace longqa {

enum class FileResidency {
  Mapped,     // mmap of the file: pages come from the page cache as they are touched
  HugePages,  // read at construction into private memory madvised for 2 MiB pages
};

class MappedFile {
 public:
  explicit MappedFile(const std::string& path, FileResidency residency = FileResidency::Mapped);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&&) = delete;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }

  // Runs `edit` on the bytes, writable for its duration: for rearranging what was read once, at
  // load. Only a private copy (HugePages) can be edited; a mapping's pages are the file's (throws).
  void edit(const std::function<void(std::span<uint8_t>)>& edit);

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // length of the mapping at data_ (size_ rounded up to 2 MiB for HugePages)
  bool copy_ = false;  // a private copy (HugePages), not a mapping of the file
};

}  // namespace longqa
