// MappedFile — a read-only memory map of a whole file (RAII). Model weights stay in the page cache
// and are never copied: tensors are views into this mapping. Thread-safe to read after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace longqa {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&&) = delete;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace longqa
