#include "apps/index_commands.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/data_paths.h"
#include "retrieval/index.h"
#include "util/error.h"

namespace longqa::apps {
namespace fs = std::filesystem;
using namespace retrieval;

struct IndexCommandState {
  std::string dir;
  std::vector<std::string> paths;
  AddOptions add;
  std::string embed_model, tokenizer, pooling, instruction, dense_kind;
  SearchOptions search;
  std::string query, search_embed_model;
  bool json = false;
};

namespace {

std::optional<std::string> given(const std::string& s) { return s.empty() ? std::nullopt : std::optional(s); }

int cmd_add(IndexCommandState& s) {
  AddOptions o = s.add;
  o.embed_model = given(s.embed_model);
  o.tokenizer = given(s.tokenizer);
  o.pooling = given(s.pooling);
  o.query_instruction = given(s.instruction);
  o.dense_kind = given(s.dense_kind);
  if (!o.tokenizer && !o.embed_model) o.default_tokenizer = bundled_data("llama3-tokenizer/tokenizer.json");
  Index index(s.dir, Index::Mode::Write);
  const AddReport r = index.add(s.paths, o);
  for (const std::string& p : r.problems) std::fprintf(stderr, "longqa: skipped: %s\n", p.c_str());
  const int64_t files = r.files_added + r.files_updated + r.files_unchanged;
  std::printf("indexed %lld files (%lld new, %lld updated, %lld unchanged), %lld chunks, %lld embedded; "
              "%.1f MB in %.2f s (%.1f MB/s)%s\n",
              static_cast<long long>(files), static_cast<long long>(r.files_added),
              static_cast<long long>(r.files_updated), static_cast<long long>(r.files_unchanged),
              static_cast<long long>(r.chunks_added), static_cast<long long>(r.embedded),
              static_cast<double>(r.bytes) / 1e6, r.seconds, static_cast<double>(r.bytes) / 1e6 / std::max(r.seconds, 1e-9),
              r.problems.empty() ? "" : ("; " + std::to_string(r.problems.size()) + " skipped").c_str());
  if (files == 0 && !r.problems.empty()) throw Error("nothing could be indexed");
  return 0;
}

void cmd_rm(IndexCommandState& s) {
  Index index(s.dir, Index::Mode::Write);
  const int64_t removed = index.remove(s.paths);
  std::printf("removed %lld files\n", static_cast<long long>(removed));
}

void cmd_stats(IndexCommandState& s) {
  Index index(s.dir, Index::Mode::Read);
  const IndexStats st = index.stats();
  if (s.json) {
    nlohmann::json j = {{"files", st.store.files},           {"documents", st.store.documents},
                        {"chunks", st.store.chunks},         {"tokens", st.store.tokens},
                        {"embedded", st.store.embedded},     {"tokenizer", st.tokenizer},
                        {"embed_model", st.embed_model.empty() ? nlohmann::json(nullptr) : nlohmann::json(st.embed_model)},
                        {"pooling", st.pooling},             {"dense_index", st.dense_kind},
                        {"dim", st.dim},                     {"db_bytes", st.db_bytes},
                        {"vectors_bytes", st.vectors_bytes}, {"vectors_current", st.vectors_seq == st.embedding_seq}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("files:        %lld\ndocuments:    %lld\nchunks:       %lld (%lld tokens)\n",
              static_cast<long long>(st.store.files), static_cast<long long>(st.store.documents),
              static_cast<long long>(st.store.chunks), static_cast<long long>(st.store.tokens));
  std::printf("tokenizer:    %s\n", st.tokenizer.c_str());
  if (st.embed_model.empty()) {
    std::printf("dense:        none (lexical only)\n");
  } else {
    std::printf("embedder:     %s (%s pooling, %lld dimensions)\n", st.embed_model.c_str(), st.pooling.c_str(),
                static_cast<long long>(st.dim));
    std::printf("dense:        %s, %lld of %lld chunks embedded%s\n", st.dense_kind.c_str(),
                static_cast<long long>(st.store.embedded), static_cast<long long>(st.store.chunks),
                st.vectors_seq == st.embedding_seq ? "" : " (vector file behind; caught up on open)");
  }
  std::printf("size:         %.1f MB (SQLite) + %.1f MB (FAISS)\n", static_cast<double>(st.db_bytes) / 1e6,
              static_cast<double>(st.vectors_bytes) / 1e6);
}

void cmd_search(IndexCommandState& s) {
  Index index(s.dir, Index::Mode::Read);
  SearchOptions o = s.search;
  o.embed_model = given(s.search_embed_model);
  const auto results = index.search(s.query, o);
  if (s.json) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const SearchResult& r : results)
      list.push_back({{"doc", r.chunk.doc},
                      {"chunk", r.chunk.id},
                      {"page", r.chunk.page > 0 ? nlohmann::json(r.chunk.page) : nlohmann::json(nullptr)},
                      {"score", r.score},
                      {"text", r.chunk.text}});
    std::printf("%s\n", nlohmann::ordered_json{{"results", list}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  if (results.empty()) std::printf("no results\n");
  for (size_t i = 0; i < results.size(); ++i) {
    const StoredChunk& c = results[i].chunk;
    std::string page = c.page > 0 ? ", page " + std::to_string(c.page) : "";
    std::printf("%zu. %s%s (chunk %lld, bytes %lld-%lld, score %.4f)\n", i + 1, c.doc.c_str(), page.c_str(),
                static_cast<long long>(c.id), static_cast<long long>(c.begin), static_cast<long long>(c.end),
                results[i].score);
    std::string text = c.text.substr(0, 300);
    for (char& ch : text)
      if (ch == '\n') ch = ' ';
    std::printf("   %s%s\n", text.c_str(), c.text.size() > 300 ? " ..." : "");
  }
}

}  // namespace

std::shared_ptr<IndexCommandState> add_index_commands(CLI::App& app) {
  auto s = std::make_shared<IndexCommandState>();
  auto* index = app.add_subcommand("index", "build and maintain a retrieval index");
  index->require_subcommand(1);

  auto* add = index->add_subcommand("add", "add files and directories (changed files are re-indexed)");
  add->add_option("--index", s->dir, "index directory")->required();
  add->add_option("--embed-model", s->embed_model, "embedding model (GGUF or HF dir); without it: lexical only");
  add->add_option("--tokenizer", s->tokenizer, "tokenizer that counts chunk tokens (default: the embed model's, else Llama-3)");
  add->add_option("--chunk-tokens", s->add.chunk.chunk_tokens, "tokens per chunk")->capture_default_str();
  add->add_option("--overlap", s->add.chunk.overlap, "tokens shared by consecutive chunks")->capture_default_str();
  add->add_option("--pooling", s->pooling, "last (E5-mistral: EOS appended, default) or mean");
  add->add_option("--query-instruction", s->instruction, "task line of E5-style queries");
  add->add_option("--dense-index", s->dense_kind, "flat (exact, default) or hnsw");
  add->add_option("--jsonl-text-field", s->add.loader.jsonl_text_field, "JSONL field holding the text")->capture_default_str();
  add->add_option("--jsonl-id-field", s->add.loader.jsonl_id_field, "JSONL field naming the record")->capture_default_str();
  add->add_option("-t,--threads", s->add.threads, "worker threads (default: all)");
  add->add_option("paths", s->paths, "files and directories")->required();
  add->callback([s] { cmd_add(*s); });

  auto* rm = index->add_subcommand("rm", "remove files, or everything under directories");
  rm->add_option("--index", s->dir, "index directory")->required();
  rm->add_option("paths", s->paths, "files and directories")->required();
  rm->callback([s] { cmd_rm(*s); });

  auto* stats = index->add_subcommand("stats", "what the index holds");
  stats->add_option("--index", s->dir, "index directory")->required();
  stats->add_flag("--json", s->json, "print one JSON object");
  stats->callback([s] { cmd_stats(*s); });

  auto* search = app.add_subcommand("search", "find the chunks that best match a query");
  search->add_option("--index", s->dir, "index directory")->required();
  search->add_option("--k", s->search.k, "results")->capture_default_str();
  search->add_option("--retriever", s->search.retriever, "bm25, dense or hybrid (default: hybrid when the index has vectors)");
  search->add_option("--bm25-weight", s->search.bm25_weight, "hybrid: weight of the BM25 ranking")->capture_default_str();
  search->add_option("--dense-weight", s->search.dense_weight, "hybrid: weight of the dense ranking")->capture_default_str();
  search->add_option("--candidates", s->search.candidates, "hybrid: results taken from each retriever")->capture_default_str();
  search->add_option("--embed-model", s->search_embed_model, "the index's embedder, if it moved");
  search->add_option("-t,--threads", s->search.threads, "worker threads (default: all)");
  search->add_flag("--json", s->json, "print {\"results\": [...]}");
  search->add_option("query", s->query, "the query")->required();
  search->callback([s] { cmd_search(*s); });
  return s;
}

}  // namespace longqa::apps
