// LineReader — reads a text file line by line whether it is plain, gzip- or zstd-compressed (chosen by
// the file's magic bytes, not its name), so corpora are streamed as distributed, in bounded memory.
// Lines are returned without their '\n' (and without a '\r' before it); line numbers count from 1 for
// error messages. One owner, one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace longqa::data {

class LineReader {
 public:
  explicit LineReader(std::string path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line into `line`; false at the end of the file. Throws Error on a read or decompression
  // failure (a truncated .gz or .zst is such a failure, naming the file).
  bool next(std::string& line);
  // Skips n lines (resuming a run); false if the file has fewer.
  bool skip(uint64_t n);

  const std::string& path() const { return path_; }
  uint64_t line_number() const { return line_; }  // of the line last returned
  // "path:line", for messages about the line last returned.
  std::string where() const { return path_ + ":" + std::to_string(line_); }

  class Source;  // the byte stream underneath: plain, gzip or zstd

 private:
  bool fill();

  std::string path_;
  std::unique_ptr<Source> source_;
  std::string buffer_;
  size_t pos_ = 0;
  bool eof_ = false;
  uint64_t line_ = 0;
};

}  // namespace longqa::data
