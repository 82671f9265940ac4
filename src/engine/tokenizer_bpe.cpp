// Byte-level BPE (GPT-2 / Llama-3 / Qwen2): regex pre-tokenization, bytes mapped to printable
// characters, then merges applied lowest rank first (leftmost on ties), as HF tokenizers does.
#include <array>
#include <queue>
#include <unordered_map>

#include "engine/pretokenizer.h"
#include "engine/tokenizer_impl.h"
#include "util/error.h"
#include "util/utf8.h"

namespace longqa {
namespace {

// GPT-2's reversible map from bytes to printable code points.
std::array<char32_t, 256> bytes_to_unicode() {
  std::array<char32_t, 256> map{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    map[static_cast<size_t>(b)] = printable ? static_cast<char32_t>(b) : next++;
  }
  return map;
}

class ByteLevelBpe final : public Tokenizer {
 public:
  explicit ByteLevelBpe(TokenizerSpec spec)
      : Tokenizer(std::move(spec.vocab), std::move(spec.added)), pretokenizer_(spec.pattern), ignore_merges_(spec.ignore_merges) {
    const MergeList& merges = spec.merges;
    const auto map = bytes_to_unicode();
    byte_char_ = byte_level_chars();
    std::unordered_map<char32_t, uint8_t> unmap;
    for (size_t b = 0; b < 256; ++b) {
      unmap[map[b]] = static_cast<uint8_t>(b);
      auto id = find(byte_char_[b]);
      byte_token_[b] = id ? *id : -1;
    }
    merges_.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& [a, b] = merges[rank];
      auto ia = find(a), ib = find(b), iab = find(a + b);
      if (!ia || !ib || !iab) throw Error("BPE merge " + std::to_string(rank) + " ('" + a + " " + b + "') names a token not in the vocabulary");
      merges_.emplace(key(*ia, *ib), Merge{static_cast<int32_t>(rank), *iab});
    }
    // Token bytes, decoded once: the byte-level characters back to raw bytes.
    bytes_.resize(vocab_.size());
    for (size_t id = 0; id < vocab_.size(); ++id) {
      const std::string& text = vocab_[id];
      std::string& out = bytes_[id];
      for (size_t i = 0; i < text.size();) {
        const size_t at = i;
        const char32_t cp = utf8::next(text, i);
        auto it = unmap.find(cp);
        if (it != unmap.end()) out += static_cast<char>(it->second);
        else out.append(text, at, i - at);
      }
    }
    build_pieces();
  }

  std::string kind() const override { return "byte-level BPE"; }

 protected:
  void encode_plain(std::string_view text, bool /*at_start*/, std::vector<int32_t>& out,
                    EncodeCache* cache) const override {
    std::string mapped;
    pretokenizer_.split(text, [&](std::string_view piece) {
      if (cache && cache->find(piece, out)) return;
      const size_t before = out.size();
      mapped.clear();
      for (char c : piece) mapped += byte_char_[static_cast<uint8_t>(c)];
      const auto whole = ignore_merges_ ? token_ids_.find(mapped) : token_ids_.end();
      if (whole != token_ids_.end())
        out.push_back(whole->second);
      else
        bpe(piece, out);
      if (cache) cache->add(piece, std::span<const int32_t>(out).subspan(before));
    });
  }

  std::string token_bytes(int32_t id) const override { return bytes_[static_cast<size_t>(id)]; }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t key(int32_t a, int32_t b) { return static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32 | static_cast<uint32_t>(b); }

  // Merges within one pre-token, O(n log n): a heap of candidate pairs over a linked list of symbols.
  void bpe(std::string_view piece, std::vector<int32_t>& out) const {
    struct Symbol {
      int32_t id;
      int prev, next;
    };
    struct Candidate {
      int32_t rank;
      int left;
      int32_t left_id, right_id;
      bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::vector<Symbol> sym;
    sym.reserve(piece.size());
    for (size_t i = 0; i < piece.size(); ++i) {
      const int32_t id = byte_token_[static_cast<uint8_t>(piece[i])];
      if (id < 0) throw Error("the vocabulary has no token for byte " + std::to_string(static_cast<uint8_t>(piece[i])));
      sym.push_back({id, static_cast<int>(i) - 1, i + 1 < piece.size() ? static_cast<int>(i) + 1 : -1});
    }
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto consider = [&](int left) {
      if (left < 0 || sym[static_cast<size_t>(left)].next < 0) return;
      const Symbol& l = sym[static_cast<size_t>(left)];
      const Symbol& r = sym[static_cast<size_t>(l.next)];
      if (auto it = merges_.find(key(l.id, r.id)); it != merges_.end()) heap.push({it->second.rank, left, l.id, r.id});
    };
    for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) consider(i);
    while (!heap.empty()) {
      const Candidate c = heap.top();
      heap.pop();
      Symbol& l = sym[static_cast<size_t>(c.left)];
      if (l.id != c.left_id || l.next < 0 || sym[static_cast<size_t>(l.next)].id != c.right_id) continue;  // stale
      const int right = l.next;
      l.id = merges_.at(key(c.left_id, c.right_id)).result;
      l.next = sym[static_cast<size_t>(right)].next;
      if (l.next >= 0) sym[static_cast<size_t>(l.next)].prev = c.left;
      sym[static_cast<size_t>(right)].id = -1;  // dead
      consider(l.prev);
      consider(c.left);
    }
    for (int i = sym.empty() ? -1 : 0; i >= 0; i = sym[static_cast<size_t>(i)].next) out.push_back(sym[static_cast<size_t>(i)].id);
  }

  Pretokenizer pretokenizer_;
  bool ignore_merges_;
  std::array<std::string, 256> byte_char_;
  std::array<int32_t, 256> byte_token_{};
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<std::string> bytes_;
};

}  // namespace

std::array<std::string, 256> byte_level_chars() {
  const auto map = bytes_to_unicode();
  std::array<std::string, 256> chars;
  for (size_t b = 0; b < 256; ++b) utf8::append(chars[b], map[b]);
  return chars;
}

std::unique_ptr<Tokenizer> make_byte_level_bpe(TokenizerSpec spec) { return std::make_unique<ByteLevelBpe>(std::move(spec)); }

}  // namespace longqa
