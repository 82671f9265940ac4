#include "data/megatron_dataset.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/atomic_file.h"
#include "util/error.h"

namespace longqa::data {

TokenDtype optimal_dtype(int64_t vocab_size) { return vocab_size < 65500 ? TokenDtype::UInt16 : TokenDtype::Int32; }
size_t dtype_size(TokenDtype d) { return d == TokenDtype::UInt16 ? 2 : 4; }
const char* dtype_name(TokenDtype d) { return d == TokenDtype::UInt16 ? "uint16" : "int32"; }

namespace {

template <typename T>
void put(std::string& out, T v) {  // little-endian, as Megatron's struct.pack("<...") writes
  unsigned char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(reinterpret_cast<const char*>(b), sizeof(T));
}

}  // namespace

IndexedDatasetWriter::IndexedDatasetWriter(std::string prefix, TokenDtype dtype, uint64_t resume_tokens)
    : prefix_(std::move(prefix)), dtype_(dtype), tokens_(resume_tokens) {
  const std::string path = prefix_ + ".bin";
  if (resume_tokens > 0) {
    std::error_code ec;
    const uint64_t have = std::filesystem::file_size(path, ec);
    const uint64_t want = resume_tokens * dtype_size(dtype_);
    if (ec || have < want)
      throw Error(path + ": holds fewer tokens than the checkpoint records (" + std::to_string(ec ? 0 : have) +
                  " bytes, expected at least " + std::to_string(want) + ")");
    std::filesystem::resize_file(path, want);
    bin_ = std::fopen(path.c_str(), "ab");
  } else {
    bin_ = std::fopen(path.c_str(), "wb");
  }
  if (!bin_) throw Error(path + ": cannot open for writing: " + std::strerror(errno));
}

IndexedDatasetWriter::~IndexedDatasetWriter() {
  if (bin_) std::fclose(bin_);
}

void IndexedDatasetWriter::append(std::span<const int32_t> tokens) {
  if (tokens.empty()) return;
  const size_t size = dtype_size(dtype_);
  scratch_.resize(tokens.size() * size);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t t = tokens[i];
    if (dtype_ == TokenDtype::UInt16) {
      if (t < 0 || t > 0xffff) throw Error(prefix_ + ".bin: token id " + std::to_string(t) + " does not fit uint16");
      const auto v = static_cast<uint16_t>(t);
      std::memcpy(&scratch_[i * size], &v, size);
    } else {
      std::memcpy(&scratch_[i * size], &t, size);
    }
  }
  if (std::fwrite(scratch_.data(), 1, scratch_.size(), bin_) != scratch_.size())
    throw Error(prefix_ + ".bin: write failed: " + std::strerror(errno));
  tokens_ += tokens.size();
}

void IndexedDatasetWriter::sync() {
  if (std::fflush(bin_) != 0 || ::fsync(fileno(bin_)) != 0) throw Error(prefix_ + ".bin: sync failed: " + std::strerror(errno));
}

void IndexedDatasetWriter::finish(uint64_t seq_len) {
  if (seq_len == 0) throw Error("sequence length must be positive");
  sync();
  std::fclose(bin_);
  bin_ = nullptr;
  const uint64_t count = (tokens_ + seq_len - 1) / seq_len;
  std::string idx("MMIDIDX\0\0", 9);
  put<uint64_t>(idx, 1);
  put<uint8_t>(idx, static_cast<uint8_t>(dtype_));
  put<uint64_t>(idx, count);
  put<uint64_t>(idx, count + 1);  // document_indices: [0, 1, ..., count]
  for (uint64_t i = 0; i < count; ++i) put<int32_t>(idx, static_cast<int32_t>(std::min(seq_len, tokens_ - i * seq_len)));
  for (uint64_t i = 0; i < count; ++i) put<int64_t>(idx, static_cast<int64_t>(i * seq_len * dtype_size(dtype_)));
  for (uint64_t i = 0; i <= count; ++i) put<int64_t>(idx, static_cast<int64_t>(i));
  write_file_atomically(prefix_ + ".idx", idx);
}

IndexedDatasetReader::IndexedDatasetReader(const std::string& prefix) : prefix_(prefix), bin_(prefix + ".bin") {
  const MappedFile idx(prefix + ".idx");
  const std::span<const uint8_t> b = idx.bytes();
  size_t at = 0;
  auto take = [&](size_t n) {
    if (at + n > b.size()) throw Error(prefix + ".idx: truncated");
    const uint8_t* p = b.data() + at;
    at += n;
    return p;
  };
  auto u64 = [&] {
    uint64_t v;
    std::memcpy(&v, take(8), 8);
    return v;
  };
  if (std::memcmp(take(9), "MMIDIDX\0\0", 9) != 0) throw Error(prefix + ".idx: not a Megatron index (bad magic)");
  if (u64() != 1) throw Error(prefix + ".idx: unsupported version");
  const uint8_t code = *take(1);
  if (code != static_cast<uint8_t>(TokenDtype::UInt16) && code != static_cast<uint8_t>(TokenDtype::Int32))
    throw Error(prefix + ".idx: token dtype code " + std::to_string(code) + " (uint16 and int32 are read)");
  dtype_ = static_cast<TokenDtype>(code);
  const uint64_t count = u64(), documents = u64();
  if (count > b.size() / 12) throw Error(prefix + ".idx: sequence count " + std::to_string(count) + " exceeds the file");
  sizes_.resize(count);
  std::memcpy(sizes_.data(), take(count * 4), count * 4);
  std::vector<int64_t> pointers(count);
  std::memcpy(pointers.data(), take(count * 8), count * 8);
  take(documents * 8);
  uint64_t expected = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (sizes_[i] < 0 || static_cast<uint64_t>(pointers[i]) != expected)
      throw Error(prefix + ".idx: sequence " + std::to_string(i) + " is not contiguous with the previous one");
    expected += static_cast<uint64_t>(sizes_[i]) * dtype_size(dtype_);
    tokens_ += static_cast<uint64_t>(sizes_[i]);
  }
  if (expected > bin_.size()) throw Error(prefix + ".bin: shorter than its index says");
}

int32_t IndexedDatasetReader::token(uint64_t i) const {
  if (dtype_ == TokenDtype::UInt16) {
    uint16_t v;
    std::memcpy(&v, bin_.data() + i * 2, 2);
    return v;
  }
  int32_t v;
  std::memcpy(&v, bin_.data() + i * 4, 4);
  return v;
}

void IndexedDatasetReader::read(uint64_t start, uint64_t n, int32_t* out) const {
  if (start + n > tokens_) throw Error(prefix_ + ".bin: read past the end");
  for (uint64_t i = 0; i < n; ++i) out[i] = token(start + i);
}

}  // namespace longqa::data
