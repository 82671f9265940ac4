#include "retrieval/store.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "util/error.h"

namespace longqa::retrieval {
namespace {

constexpr int kSchemaVersion = 1;

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
  id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, hash TEXT NOT NULL, bytes INTEGER NOT NULL,
  added_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
  id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
  name TEXT NOT NULL, bytes INTEGER NOT NULL, pages INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS documents_file ON documents(file_id);
CREATE TABLE IF NOT EXISTS chunks(
  id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL, begin INTEGER NOT NULL, end INTEGER NOT NULL, page_first INTEGER NOT NULL,
  page_last INTEGER NOT NULL, tokens INTEGER NOT NULL, embedding BLOB, embedded_seq INTEGER);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_embedded ON chunks(embedded_seq) WHERE embedded_seq IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_text USING fts5(text, tokenize = 'porter unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS chunks_delete AFTER DELETE ON chunks BEGIN
  DELETE FROM chunk_text WHERE rowid = old.id;
END;
)sql";

// Words too common to help a BM25 query; dropping them keeps queries fast at millions of chunks.
const std::set<std::string, std::less<>> kStopWords = {
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "did", "do", "does", "for", "from", "had", "has",
    "have", "how", "i", "in", "is", "it", "its", "me", "my", "of", "on", "or", "that", "the", "their", "this",
    "to", "was", "were", "what", "when", "where", "which", "who", "whom", "why", "will", "with", "you", "your"};

}  // namespace

std::string fts_query(std::string_view text) {
  std::vector<std::string> words, kept;
  std::string word;
  auto flush = [&] {
    if (!word.empty() && std::find(words.begin(), words.end(), word) == words.end()) words.push_back(word);
    word.clear();
  };
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c >= 0x80)
      word += static_cast<char>(std::tolower(c));
    else
      flush();
  }
  flush();
  for (const std::string& w : words)
    if (!kStopWords.contains(w)) kept.push_back(w);
  if (kept.empty()) kept = words;
  if (kept.size() > 64) kept.resize(64);
  std::string q;
  for (const std::string& w : kept) q += (q.empty() ? "\"" : " OR \"") + w + "\"";
  return q;
}

Store::Store(const std::string& path, bool read_only) : db_(path, read_only) {
  if (read_only) {
    db_.exec("PRAGMA query_only = ON");
  } else {
    // WAL: readers never block the writer, and a killed writer loses only its open transaction.
    db_.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 16384;");
    db_.exec(kSchema);
    const auto v = meta("schema_version");
    if (!v) set_meta("schema_version", std::to_string(kSchemaVersion));
  }
  const auto v = meta("schema_version");
  if (!v || *v != std::to_string(kSchemaVersion))
    throw Error(path + ": not a longqa index of schema version " + std::to_string(kSchemaVersion));
}

std::optional<std::string> Store::meta(const std::string& key) {
  Statement s(db_, "SELECT value FROM meta WHERE key = ?");
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

void Store::set_meta(const std::string& key, const std::string& value) {
  Statement(db_, "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
      .bind(1, key)
      .bind(2, value)
      .run();
}

std::unordered_map<std::string, std::string> Store::file_hashes() {
  std::unordered_map<std::string, std::string> out;
  Statement s(db_, "SELECT path, hash FROM files");
  while (s.step()) out.emplace(s.text(0), s.text(1));
  return out;
}

void Store::put_file(const LoadedFile& file, const std::vector<std::vector<Chunk>>& chunks) {
  Statement(db_, "DELETE FROM files WHERE path = ?").bind(1, file.path).run();
  Statement add_file(db_, "INSERT INTO files(path, hash, bytes, added_at) VALUES(?, ?, ?, unixepoch())");
  add_file.bind(1, file.path).bind(2, file.hash).bind(3, static_cast<int64_t>(file.bytes)).run();
  const int64_t file_id = sqlite3_last_insert_rowid(db_.handle());
  Statement add_doc(db_, "INSERT INTO documents(file_id, name, bytes, pages) VALUES(?, ?, ?, ?)");
  Statement add_chunk(db_,
                      "INSERT INTO chunks(doc_id, seq, begin, end, page_first, page_last, tokens) "
                      "VALUES(?, ?, ?, ?, ?, ?, ?)");
  Statement add_text(db_, "INSERT INTO chunk_text(rowid, text) VALUES(?, ?)");
  for (size_t d = 0; d < file.documents.size(); ++d) {
    const Document& doc = file.documents[d];
    add_doc.bind(1, file_id).bind(2, doc.name).bind(3, static_cast<int64_t>(doc.text.size()));
    add_doc.bind(4, static_cast<int64_t>(doc.page_starts.size())).run();
    const int64_t doc_id = sqlite3_last_insert_rowid(db_.handle());
    for (size_t i = 0; i < chunks[d].size(); ++i) {
      const Chunk& c = chunks[d][i];
      add_chunk.bind(1, doc_id).bind(2, static_cast<int64_t>(i)).bind(3, static_cast<int64_t>(c.begin));
      add_chunk.bind(4, static_cast<int64_t>(c.end)).bind(5, int64_t{c.page_first}).bind(6, int64_t{c.page_last});
      add_chunk.bind(7, c.tokens).run();
      add_text.bind(1, static_cast<int64_t>(sqlite3_last_insert_rowid(db_.handle())));
      add_text.bind(2, std::string_view(doc.text).substr(c.begin, c.end - c.begin)).run();
    }
  }
}

int64_t Store::remove_path(const std::string& path) {
  std::string dir = path;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  // GLOB, not LIKE: '%' and '_' are ordinary characters in file names. Escape GLOB's own metacharacters.
  std::string pattern;
  for (char c : dir) {
    if (c == '*' || c == '?' || c == '[') {
      pattern += '[';
      pattern += c;
      pattern += ']';
    } else {
      pattern += c;
    }
  }
  pattern += dir == "/" ? "*" : "/*";
  Statement s(db_, "DELETE FROM files WHERE path = ? OR path GLOB ?");
  s.bind(1, dir).bind(2, pattern).run();
  return sqlite3_changes(db_.handle());
}

std::vector<Store::Pending> Store::pending_embeddings(int64_t limit) {
  std::vector<Pending> out;
  Statement s(db_,
              "SELECT chunks.id, chunk_text.text FROM chunks JOIN chunk_text ON chunk_text.rowid = chunks.id "
              "WHERE chunks.embedding IS NULL ORDER BY chunks.id LIMIT ?");
  s.bind(1, limit);
  while (s.step()) out.push_back({s.integer(0), s.text(1)});
  return out;
}

void Store::set_embedding(int64_t id, std::span<const float> vector, int64_t seq) {
  Statement(db_, "UPDATE chunks SET embedding = ?, embedded_seq = ? WHERE id = ?")
      .bind_blob(1, {reinterpret_cast<const uint8_t*>(vector.data()), vector.size_bytes()})
      .bind(2, seq)
      .bind(3, id)
      .run();
  set_meta("embedding_seq", std::to_string(seq));
}

int64_t Store::embedding_seq() {
  const auto v = meta("embedding_seq");
  return v ? std::stoll(*v) : 0;
}

std::vector<Scored> Store::bm25(const std::string& query, int64_t k) {
  const std::string q = fts_query(query);
  std::vector<Scored> out;
  if (q.empty()) return out;
  Statement s(db_, "SELECT rowid, rank FROM chunk_text WHERE chunk_text MATCH ? ORDER BY rank LIMIT ?");
  s.bind(1, q).bind(2, k);
  while (s.step()) out.push_back({s.integer(0), -s.real(1)});  // FTS5's bm25() is negated: lower is better
  return out;
}

std::vector<StoredChunk> Store::chunks(const std::vector<int64_t>& ids) {
  Statement s(db_,
              "SELECT documents.name, chunks.page_first, chunks.begin, chunks.end, chunks.tokens, chunk_text.text "
              "FROM chunks JOIN documents ON documents.id = chunks.doc_id "
              "JOIN chunk_text ON chunk_text.rowid = chunks.id WHERE chunks.id = ?");
  std::vector<StoredChunk> out;
  for (int64_t id : ids) {
    s.bind(1, id);
    if (s.step()) out.push_back({id, s.text(0), static_cast<int>(s.integer(1)), s.integer(2), s.integer(3), s.integer(4), s.text(5)});
    s.reset();
  }
  return out;
}

std::vector<StoredDocument> Store::documents() {
  Statement s(db_,
              "SELECT documents.id, documents.name, chunks.begin, chunks.end, chunk_text.text FROM documents "
              "JOIN chunks ON chunks.doc_id = documents.id JOIN chunk_text ON chunk_text.rowid = chunks.id "
              "ORDER BY documents.id, chunks.seq");
  std::vector<StoredDocument> out;
  int64_t doc = -1, covered = 0;
  while (s.step()) {
    if (s.integer(0) != doc) {
      doc = s.integer(0);
      covered = 0;
      out.push_back({s.text(1), {}});
    }
    const int64_t begin = s.integer(2), end = s.integer(3);
    if (end <= covered) continue;
    const std::string text = s.text(4);
    if (begin > covered && covered > 0) out.back().text += "\n\n";
    out.back().text += text.substr(static_cast<size_t>(std::max(begin, covered) - begin));
    covered = end;
  }
  return out;
}

StoreStats Store::stats() {
  StoreStats st;
  Statement s(db_,
              "SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM documents), count(*), "
              "coalesce(sum(tokens), 0), count(embedding) FROM chunks");
  s.step();
  st.files = s.integer(0);
  st.documents = s.integer(1);
  st.chunks = s.integer(2);
  st.tokens = s.integer(3);
  st.embedded = s.integer(4);
  return st;
}

}  // namespace longqa::retrieval
