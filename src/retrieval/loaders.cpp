#include "retrieval/loaders.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/sha256.h"
#include "util/utf8.h"

namespace longqa::retrieval {
namespace fs = std::filesystem;
namespace {

std::string lower_extension(std::string_view path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

std::string read_all(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(path + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path + ": read failed");
  return bytes;
}

// Text must be UTF-8 and not binary; a UTF-8 byte-order mark is dropped.
std::string checked_text(std::string_view bytes, const std::string& path) {
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
  if (bytes.find('\0') != std::string_view::npos) throw Error(path + ": binary file (contains NUL bytes)");
  if (const size_t bad = utf8::first_invalid(bytes); bad != std::string_view::npos)
    throw Error(path + ": not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  return std::string(bytes);
}

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

std::vector<Document> parse_jsonl(std::string_view bytes, const std::string& path, const LoaderOptions& o,
                                  std::vector<std::string>& warnings) {
  std::vector<Document> docs;
  size_t line_no = 0;
  for (size_t begin = 0; begin < bytes.size();) {
    size_t end = bytes.find('\n', begin);
    if (end == std::string_view::npos) end = bytes.size();
    const std::string_view line = bytes.substr(begin, end - begin);
    begin = end + 1;
    ++line_no;
    if (blank(line)) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    try {
      const auto j = nlohmann::json::parse(line);
      if (!j.is_object()) throw Error("not a JSON object");
      const auto text = j.find(o.jsonl_text_field);
      if (text == j.end() || !text->is_string()) throw Error("no string field '" + o.jsonl_text_field + "'");
      std::string id = std::to_string(line_no);
      if (const auto f = j.find(o.jsonl_id_field); f != j.end())
        id = f->is_string() ? f->get<std::string>() : f->dump();
      Document d{path + "#" + id, text->get<std::string>(), {}};
      if (blank(d.text)) throw Error("empty text");
      docs.push_back(std::move(d));
    } catch (const nlohmann::json::exception& e) {
      warnings.push_back(where + ": invalid JSON: " + e.what());
    } catch (const Error& e) {
      warnings.push_back(where + ": " + e.what());
    }
  }
  if (docs.empty()) throw Error(path + ": no usable JSONL records" + (warnings.empty() ? "" : " (" + warnings[0] + ")"));
  return docs;
}

}  // namespace

FileKind file_kind(std::string_view path) {
  const std::string ext = lower_extension(path);
  if (ext == ".html" || ext == ".htm" || ext == ".xhtml") return FileKind::Html;
  if (ext == ".pdf") return FileKind::Pdf;
  if (ext == ".jsonl" || ext == ".ndjson") return FileKind::Jsonl;
  return FileKind::Text;
}

bool is_indexable_name(std::string_view path) {
  static const char* kText[] = {".txt", ".text", ".md", ".markdown", ".rst", ".html", ".htm", ".xhtml", ".pdf", ".jsonl", ".ndjson"};
  const std::string ext = lower_extension(path);
  return std::any_of(std::begin(kText), std::end(kText), [&](const char* e) { return ext == e; });
}

LoadedFile load_file(const std::string& path, const LoaderOptions& options) {
  LoadedFile f;
  f.path = path;
  const std::string bytes = read_all(path);
  f.bytes = bytes.size();
  if (bytes.empty()) throw Error(path + ": empty file");
  f.hash = sha256_hex(bytes);
  switch (file_kind(path)) {
    case FileKind::Text:
      f.documents.push_back({path, checked_text(bytes, path), {}});
      break;
    case FileKind::Html:
      f.documents.push_back({path, html_to_text(bytes, path), {}});
      break;
    case FileKind::Pdf:
      f.documents.push_back(pdf_to_document(bytes, path));
      break;
    case FileKind::Jsonl:
      f.documents = parse_jsonl(checked_text(bytes, path), path, options, f.warnings);
      break;
  }
  for (const Document& d : f.documents)
    if (blank(d.text)) throw Error(d.name + ": no text");
  return f;
}

std::vector<std::string> collect_files(const std::vector<std::string>& paths, std::vector<std::string>& problems) {
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    std::error_code ec;
    const fs::path abs = fs::absolute(p, ec).lexically_normal();
    const auto status = fs::status(abs, ec);
    if (ec || !fs::exists(status)) {
      problems.push_back(p + ": no such file or directory");
      continue;
    }
    if (!fs::is_directory(status)) {
      files.push_back(abs.string());
      continue;
    }
    fs::recursive_directory_iterator it(abs, fs::directory_options::skip_permission_denied, ec), end;
    if (ec) {
      problems.push_back(p + ": cannot read directory: " + ec.message());
      continue;
    }
    for (; it != end; it.increment(ec)) {
      if (ec) {
        problems.push_back(it->path().string() + ": " + ec.message());
        break;
      }
      const std::string name = it->path().filename().string();
      if (!name.empty() && name[0] == '.') {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file(ec) && is_indexable_name(name)) files.push_back(it->path().string());
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

}  // namespace longqa::retrieval
