#include "data/jsonl_records.h"

#include "util/error.h"
#include "util/utf8.h"

namespace longqa::data {

using json = nlohmann::json;

const json* lookup(const json& j, const std::string& dotted) {
  if (!j.is_object()) return nullptr;
  if (const auto it = j.find(dotted); it != j.end()) return &*it;
  const size_t dot = dotted.find('.');
  if (dot == std::string::npos) return nullptr;
  const auto it = j.find(dotted.substr(0, dot));
  return it == j.end() ? nullptr : lookup(*it, dotted.substr(dot + 1));
}

const std::string* string_at(const json& j, const std::string& dotted) {
  const json* v = lookup(j, dotted);
  return v && v->is_string() ? v->get_ptr<const std::string*>() : nullptr;
}

RecordResult parse_object(const std::string& line, json& out) {
  if (line.find_first_not_of(" \t\r") == std::string::npos) return {RecordStatus::Empty, ""};
  if (const size_t bad = utf8::first_invalid(line); bad != std::string::npos)
    return {RecordStatus::Bad, "invalid UTF-8 at byte " + std::to_string(bad)};
  out = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) return {RecordStatus::Bad, "malformed JSON"};
  if (!out.is_object()) return {RecordStatus::Bad, "not a JSON object"};
  return {RecordStatus::Ok, ""};
}

RecordResult parse_record(const std::string& line, const std::string& text_field, const std::string& source_field,
                          std::string& text, std::string& source) {
  json j;
  RecordResult r = parse_object(line, j);
  if (r.status != RecordStatus::Ok) return r;
  const std::string* t = string_at(j, text_field);
  if (!t) return {RecordStatus::Bad, "no string field '" + text_field + "'"};
  if (source_field.empty()) {
    source = "all";
  } else {
    const std::string* s = string_at(j, source_field);
    if (!s) return {RecordStatus::Bad, "no string field '" + source_field + "'"};
    source = *s;
  }
  text = *t;
  return {text.empty() ? RecordStatus::Empty : RecordStatus::Ok, ""};
}

void RecordProblems::add(const std::string& where, const std::string& reason) {
  ++bad;
  if (examples.size() < kKept) examples.push_back(where + ": " + reason);
}

RecordBatcher::RecordBatcher(std::vector<std::string> files, size_t max_bytes, size_t file, uint64_t line)
    : files_(std::move(files)), max_bytes_(std::max<size_t>(1, max_bytes)), file_(file), skip_(line) {}

bool RecordBatcher::next(RecordBatch& batch) {
  batch.lines.clear();
  batch.bytes = 0;
  while (file_ < files_.size()) {
    if (!reader_) {
      reader_ = std::make_unique<LineReader>(files_[file_]);
      if (!reader_->skip(skip_)) throw Error(files_[file_] + ": has fewer than the " + std::to_string(skip_) + " lines a checkpoint records");
    }
    batch.path = files_[file_];
    batch.first_line = reader_->line_number() + 1;
    std::string line;
    while (batch.bytes < max_bytes_ && reader_->next(line)) {
      batch.bytes += line.size() + 1;
      batch.lines.push_back(std::move(line));
    }
    if (!batch.lines.empty()) return true;
    reader_.reset();  // this file is done: the next batch starts the next file
    ++file_;
    skip_ = 0;
  }
  return false;
}

}  // namespace longqa::data
