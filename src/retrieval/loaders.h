// Loaders — files to plain UTF-8 documents: text and Markdown (as is), HTML (text only, via libxml2),
// PDF (text per page, via poppler), JSONL (one document per line). A file that cannot be used raises
// longqa::Error naming it and why (binary, invalid UTF-8, empty, corrupt, unreadable); the caller
// reports it and goes on with the rest. Loading is thread-safe (PDF parsing is serialised inside).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace longqa::retrieval {

struct Document {
  std::string name;                 // what results cite: the file's path, or "path#id" for a JSONL record
  std::string text;                 // valid UTF-8
  std::vector<size_t> page_starts;  // PDFs: byte offset in text where each page begins; empty otherwise
};

struct LoadedFile {
  std::string path;                   // absolute
  std::string hash;                   // SHA-256 of the file's bytes: an unchanged file is not re-indexed
  uint64_t bytes = 0;                 // file size
  std::vector<Document> documents;    // at least one
  std::vector<std::string> warnings;  // records skipped inside the file (e.g. a malformed JSONL line)
};

struct LoaderOptions {
  std::string jsonl_text_field = "text";
  std::string jsonl_id_field = "id";  // a record without it is named by its line number
};

enum class FileKind { Text, Html, Pdf, Jsonl };
// By extension; anything unknown is read as text (and refused if it is binary).
FileKind file_kind(std::string_view path);
// Whether a directory walk picks up a file with this name.
bool is_indexable_name(std::string_view path);

LoadedFile load_file(const std::string& path, const LoaderOptions& options);

// Expands directories (recursively, skipping hidden entries and unsupported extensions) into a
// sorted list of absolute file paths; paths that do not exist or cannot be read go to `problems`.
std::vector<std::string> collect_files(const std::vector<std::string>& paths, std::vector<std::string>& problems);

// Format parsers (one file each); `bytes` is the whole file, `path` names it in errors.
std::string html_to_text(std::string_view bytes, const std::string& path);
Document pdf_to_document(std::string_view bytes, const std::string& path);

}  // namespace longqa::retrieval
