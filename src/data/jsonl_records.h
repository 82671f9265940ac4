// JSONL records for the data jobs: reading corpora in bounded batches that never span two files,
// pulling fields out by dotted path ("meta.redpajama_set_name"), and counting bad lines with their
// file:line instead of failing the whole run. Pure functions and single-owner classes.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "data/line_reader.h"

namespace longqa::data {

// The value at a dotted path ("meta.redpajama_set_name"), or null if absent. A key that itself
// contains dots is found too (it is tried whole first).
const nlohmann::json* lookup(const nlohmann::json& j, const std::string& dotted);

// The string at a dotted path, or null when it is absent or not a string.
const std::string* string_at(const nlohmann::json& j, const std::string& dotted);

enum class RecordStatus { Ok, Empty, Bad };
struct RecordResult {
  RecordStatus status;
  std::string reason;  // why a record is bad
};

// Parses one JSONL line into its text and source. Blank lines and records with an empty text are
// Empty; invalid UTF-8, malformed JSON and missing or non-string fields are Bad. An empty
// source_field puts every record in the source "all".
RecordResult parse_record(const std::string& line, const std::string& text_field, const std::string& source_field,
                          std::string& text, std::string& source);
// The parsed JSON object of a line, or the reason it is not one (invalid UTF-8, malformed JSON).
RecordResult parse_object(const std::string& line, nlohmann::json& out);

// Bad records: counted all, the first few kept with their file:line for the report.
struct RecordProblems {
  static constexpr size_t kKept = 100;
  uint64_t bad = 0, empty_records = 0;
  std::vector<std::string> examples;  // "file:line: reason"

  void add(const std::string& where, const std::string& reason);
  uint64_t count() const { return bad; }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RecordProblems, bad, empty_records, examples)

struct RecordBatch {
  std::string path;
  uint64_t first_line = 0;  // line number of lines[0]
  std::vector<std::string> lines;
  uint64_t bytes = 0;
  std::string where(size_t i) const { return path + ":" + std::to_string(first_line + i); }
};

// Reads the files in order, a batch of about max_bytes at a time, starting at (file, line) — lines
// already consumed, as a checkpoint records them.
class RecordBatcher {
 public:
  RecordBatcher(std::vector<std::string> files, size_t max_bytes, size_t file = 0, uint64_t line = 0);
  bool next(RecordBatch& batch);  // false when every file is read
  // Where the next batch starts: (file index, lines of that file already consumed).
  std::pair<size_t, uint64_t> position() const { return {file_, reader_ ? reader_->line_number() : skip_}; }

 private:
  std::vector<std::string> files_;
  size_t max_bytes_;
  size_t file_;
  uint64_t skip_;
  std::unique_ptr<LineReader> reader_;
};

}  // namespace longqa::data
