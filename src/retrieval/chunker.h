// Chunker — splits a document into pieces of at most `chunk_tokens` tokens of the model's own
// tokenizer (the ChatQA-2 default: 1,200), ending each at a paragraph or sentence end where one is
// near, with an optional overlap. Chunks are byte ranges of the document text, so they can be cited
// and shown exactly; a range never splits a UTF-8 character. Thread-safe (pure function).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/tokenizer.h"
#include "retrieval/loaders.h"

namespace longqa::retrieval {

struct ChunkOptions {
  int64_t chunk_tokens = 1200;
  int64_t overlap = 0;  // tokens shared with the previous chunk; < chunk_tokens
};

struct Chunk {
  size_t begin = 0, end = 0;  // byte range in Document::text
  int64_t tokens = 0;         // tokens of the range, as counted in the whole-document tokenization
  int page_first = 0, page_last = 0;  // 1-based pages of a PDF; 0 when the document has no pages
};

// cache: the calling thread's tokenizer memo, kept across documents (may be null).
std::vector<Chunk> chunk_document(const Document& doc, const Tokenizer& tokenizer, const ChunkOptions& options,
                                  EncodeCache* cache = nullptr);

// The byte offset where each token of `ids` ends in `text` (ids = tokenizer.encode(text, false)).
// Raises Error if the tokenizer's pieces do not spell the text (a normalising tokenizer).
std::vector<size_t> token_ends(std::string_view text, const std::vector<int32_t>& ids, const Tokenizer& tokenizer);

}  // namespace longqa::retrieval
