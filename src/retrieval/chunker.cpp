#include "retrieval/chunker.h"

#include <algorithm>
#include <cstring>

#include "util/error.h"

namespace longqa::retrieval {
namespace {

enum Break { kNone = 0, kSpace = 1, kLine = 2, kSentence = 3, kParagraph = 4 };

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// How good a place byte offset p of text is to end a chunk.
Break break_at(std::string_view t, size_t p) {
  if (p == 0 || p >= t.size()) return kParagraph;
  if ((static_cast<uint8_t>(t[p]) & 0xC0) == 0x80) return kNone;  // inside a UTF-8 character
  const bool nl_before = t[p - 1] == '\n', nl_after = t[p] == '\n';
  if ((nl_before && p >= 2 && t[p - 2] == '\n') || (nl_after && p + 1 < t.size() && t[p + 1] == '\n') ||
      (nl_before && nl_after))
    return kParagraph;
  if (!is_space(t[p]) && !is_space(t[p - 1])) return kNone;
  // The last non-space character before p, past closing quotes and brackets.
  size_t q = p;
  while (q > 0 && is_space(t[q - 1])) --q;
  while (q > 0 && std::strchr("\"')]", t[q - 1]) != nullptr) --q;
  if (q > 0 && std::strchr(".!?", t[q - 1]) != nullptr) return kSentence;
  if (q >= 3 && (t.substr(q - 3, 3) == "\u3002" || t.substr(q - 3, 3) == "\uff01" || t.substr(q - 3, 3) == "\uff1f"))
    return kSentence;
  return nl_before || nl_after ? kLine : kSpace;
}

int page_of(const std::vector<size_t>& starts, size_t offset) {
  if (starts.empty()) return 0;
  return static_cast<int>(std::upper_bound(starts.begin(), starts.end(), offset) - starts.begin());
}

}  // namespace

std::vector<size_t> token_ends(std::string_view text, const std::vector<int32_t>& ids, const Tokenizer& tokenizer) {
  std::vector<size_t> ends(ids.size());
  size_t total = 0;
  for (int32_t id : ids) total += tokenizer.piece(id).size();
  // SentencePiece tokenizers spell a leading space (the dummy prefix) that is not in the text.
  const size_t prefix = total - std::min(total, text.size());
  if (total < text.size() || prefix > 1) throw Error("chunker: the tokenizer's pieces do not spell the text");
  size_t pos = 0;  // position in the spelled text (prefix included)
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string_view piece = tokenizer.piece(ids[i]);
    for (size_t k = 0; k < piece.size(); ++k, ++pos) {
      const bool ok = pos < prefix ? piece[k] == ' ' : piece[k] == text[pos - prefix];
      if (!ok) throw Error("chunker: the tokenizer's pieces do not spell the text at byte " + std::to_string(pos - std::min(pos, prefix)));
    }
    ends[i] = pos - std::min(pos, prefix);
  }
  return ends;
}

std::vector<Chunk> chunk_document(const Document& doc, const Tokenizer& tokenizer, const ChunkOptions& o,
                                  EncodeCache* cache) {
  if (o.chunk_tokens < 1) throw Error("chunk size must be at least 1 token");
  if (o.overlap < 0 || o.overlap >= o.chunk_tokens) throw Error("overlap must be in [0, chunk size)");
  const std::string_view text = doc.text;
  const std::vector<int32_t> ids = tokenizer.encode(text, /*parse_special=*/false, cache);
  const std::vector<size_t> ends = token_ends(text, ids, tokenizer);
  const auto n = static_cast<int64_t>(ids.size());
  const auto offset = [&](int64_t boundary) { return boundary == 0 ? size_t{0} : ends[static_cast<size_t>(boundary - 1)]; };

  std::vector<Chunk> chunks;
  for (int64_t s = 0; s < n;) {
    int64_t e = std::min(n, s + o.chunk_tokens);
    if (e < n) {
      // The latest paragraph end in the last quarter, else the latest sentence end in the last half,
      // else a line end or a space there, else a hard cut at a character boundary.
      const int64_t quarter = s + std::max<int64_t>(1, o.chunk_tokens * 3 / 4);
      const int64_t half = s + std::max<int64_t>(1, o.chunk_tokens / 2);
      int64_t best = -1;
      Break best_kind = kNone;
      for (int64_t b = e; b > s && b >= half; --b) {
        const Break k = break_at(text, offset(b));
        if (k == kParagraph && b >= quarter) {
          best = b;
          break;
        }
        if (k > best_kind && k != kParagraph) best = b, best_kind = k;
        if (k == kParagraph && best_kind < kSentence) best = b, best_kind = kSentence;
      }
      if (best < 0) {
        best = e;
        while (best > s + 1 && (static_cast<uint8_t>(text[offset(best)]) & 0xC0) == 0x80) --best;
      }
      e = best;
    }
    Chunk c;
    c.begin = offset(s);
    c.end = offset(e);
    c.tokens = e - s;
    if (text.substr(c.begin, c.end - c.begin).find_first_not_of(" \t\r\n") != std::string_view::npos) {
      c.page_first = page_of(doc.page_starts, c.begin);
      c.page_last = page_of(doc.page_starts, c.end > c.begin ? c.end - 1 : c.begin);
      chunks.push_back(c);
    }
    if (e >= n) break;
    int64_t next = e;
    if (o.overlap > 0) {
      // Start the overlap at a sentence start if one falls inside it.
      next = std::max(s + 1, e - o.overlap);
      for (int64_t b = next; b < e; ++b)
        if (break_at(text, offset(b)) >= kSentence) {
          next = b;
          break;
        }
    }
    s = next;
  }
  return chunks;
}

}  // namespace longqa::retrieval
