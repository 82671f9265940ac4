// Megatron-LM's indexed dataset (the MMapIndexedDataset layout Megatron-LM and NeMo read): PREFIX.bin
// holds the token ids of every sequence back to back; PREFIX.idx holds the header ("MMIDIDX\0\0",
// version 1, dtype code), the sequence and document counts, each sequence's length (int32) and byte
// offset (int64), and the document boundaries (int64, starting at 0). The token dtype follows
// Megatron's rule: uint16 for vocabularies under 65,500 ids, int32 otherwise.
//
// The writer appends tokens to PREFIX.bin as they come and writes PREFIX.idx once, at finish(): a
// killed run leaves no .idx, so a half-written dataset is never mistaken for a finished one. It can
// reopen an unfinished .bin at a known token count (resume). One owner, one thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "util/mapped_file.h"

namespace longqa::data {

enum class TokenDtype : uint8_t { UInt16 = 8, Int32 = 4 };  // Megatron's DType codes
TokenDtype optimal_dtype(int64_t vocab_size);
size_t dtype_size(TokenDtype d);
const char* dtype_name(TokenDtype d);

class IndexedDatasetWriter {
 public:
  // Starts PREFIX.bin afresh, or (resume_tokens > 0) reopens it and cuts it back to that many tokens,
  // the count a checkpoint recorded.
  IndexedDatasetWriter(std::string prefix, TokenDtype dtype, uint64_t resume_tokens = 0);
  ~IndexedDatasetWriter();
  IndexedDatasetWriter(const IndexedDatasetWriter&) = delete;
  IndexedDatasetWriter& operator=(const IndexedDatasetWriter&) = delete;

  void append(std::span<const int32_t> tokens);  // ids must fit the dtype
  uint64_t tokens() const { return tokens_; }
  // Flushes and fsyncs PREFIX.bin: everything appended so far survives a crash.
  void sync();
  // Writes PREFIX.idx with one sequence (and one document) per `seq_len` tokens, the last one possibly
  // shorter, and closes PREFIX.bin.
  void finish(uint64_t seq_len);

 private:
  std::string prefix_;
  TokenDtype dtype_;
  std::FILE* bin_ = nullptr;
  uint64_t tokens_ = 0;
  std::vector<unsigned char> scratch_;
};

// Reads a finished dataset (memory-mapped) as one token stream, the way Megatron's GPTDataset
// concatenates sequences. Checks the header, the counts and that every sequence lies inside .bin.
// Immutable; safe from many threads.
class IndexedDatasetReader {
 public:
  explicit IndexedDatasetReader(const std::string& prefix);
  uint64_t tokens() const { return tokens_; }
  uint64_t sequences() const { return sizes_.size(); }
  int32_t token(uint64_t i) const;  // i < tokens()
  void read(uint64_t start, uint64_t n, int32_t* out) const;

 private:
  std::string prefix_;
  MappedFile bin_;
  TokenDtype dtype_;
  std::vector<int32_t> sizes_;
  uint64_t tokens_ = 0;
};

}  // namespace longqa::data
