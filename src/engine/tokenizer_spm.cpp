// SentencePiece-style BPE (Llama-2, Mistral): spaces become U+2581 "▁", a leading ▁ is added, and
// adjacent pieces merge greedily, best first (highest merged-token score, or lowest merge rank), with
// leftmost winning ties. Characters outside the vocabulary become <0xXX> byte tokens.
#include <array>
#include <cstdio>
#include <queue>

#include "engine/tokenizer_impl.h"
#include "util/error.h"
#include "util/utf8.h"

namespace longqa {
namespace {

constexpr std::string_view kSpace = "\xe2\x96\x81";  // U+2581

class SentencePieceBpe final : public Tokenizer {
 public:
  explicit SentencePieceBpe(TokenizerSpec spec)
      : Tokenizer(std::move(spec.vocab), std::move(spec.added)), o_(std::move(spec)) {
    if (o_.merges.empty() && o_.scores.size() != vocab_.size())
      throw Error("SentencePiece vocabulary has " + std::to_string(vocab_.size()) + " tokens but " +
                  std::to_string(o_.scores.size()) + " scores");
    for (size_t rank = 0; rank < o_.merges.size(); ++rank)
      merge_rank_.emplace(o_.merges[rank].first + ' ' + o_.merges[rank].second, static_cast<int32_t>(rank));
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      auto id = find(name);
      byte_token_[static_cast<size_t>(b)] = id ? *id : -1;
      if (id) byte_of_token_.emplace(*id, static_cast<char>(b));
    }
    build_pieces();
  }

  std::string kind() const override { return "SentencePiece BPE"; }

 protected:
  void encode_plain(std::string_view text, bool at_start, std::vector<int32_t>& out, EncodeCache*) const override {
    if (text.empty()) return;
    std::string s;
    if (o_.add_space_prefix && (at_start || !o_.prefix_first_only)) s += kSpace;
    for (char c : text) {
      if (c == ' ') s += kSpace;
      else s += c;
    }
    if (!o_.split_words) return encode_word(s, out);
    // Metaspace(split=true): every ▁ starts a new word, and merges never cross words.
    size_t begin = 0;
    for (size_t i = 1; i <= s.size(); ++i) {
      if (i == s.size() || s.compare(i, kSpace.size(), kSpace) == 0) {
        encode_word(std::string_view(s).substr(begin, i - begin), out);
        begin = i;
      }
    }
  }

  std::string token_bytes(int32_t id) const override {
    if (auto it = byte_of_token_.find(id); it != byte_of_token_.end()) return std::string(1, it->second);
    std::string out;
    const std::string& t = vocab_[static_cast<size_t>(id)];
    for (size_t i = 0; i < t.size();) {
      if (t.compare(i, kSpace.size(), kSpace) == 0) {
        out += ' ';
        i += kSpace.size();
      } else {
        out += t[i++];
      }
    }
    return out;
  }

  void finish_decode(std::string& text) const override {
    if (o_.add_space_prefix && !text.empty() && text[0] == ' ') text.erase(0, 1);
  }

 private:
  // Merges the characters of one ▁-marked word, best pair first, and appends its ids.
  void encode_word(std::string_view s, std::vector<int32_t>& out) const {
    struct Symbol {
      size_t begin, len;
      int prev, next;
    };
    std::vector<Symbol> sym;
    for (size_t i = 0; i < s.size();) {
      const size_t at = i;
      utf8::next(s, i);
      sym.push_back({at, i - at, static_cast<int>(sym.size()) - 1, -1});
      if (sym.size() > 1) sym[sym.size() - 2].next = static_cast<int>(sym.size()) - 1;
    }
    struct Candidate {
      double priority;  // higher first
      int left;
      size_t len;       // merged length, to detect stale entries
      bool operator<(const Candidate& o) const { return priority != o.priority ? priority < o.priority : left > o.left; }
    };
    std::priority_queue<Candidate> heap;
    auto consider = [&](int left) {
      if (left < 0 || sym[static_cast<size_t>(left)].next < 0) return;
      const Symbol& l = sym[static_cast<size_t>(left)];
      const Symbol& r = sym[static_cast<size_t>(l.next)];
      const std::string_view merged(s.data() + l.begin, l.len + r.len);
      if (auto p = priority(merged, l.len)) heap.push({*p, left, merged.size()});
    };
    for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) consider(i);
    while (!heap.empty()) {
      const Candidate c = heap.top();
      heap.pop();
      Symbol& l = sym[static_cast<size_t>(c.left)];
      if (l.len == 0 || l.next < 0 || l.len + sym[static_cast<size_t>(l.next)].len != c.len) continue;  // stale
      Symbol& r = sym[static_cast<size_t>(l.next)];
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (l.next >= 0) sym[static_cast<size_t>(l.next)].prev = c.left;
      consider(l.prev);
      consider(c.left);
    }
    for (int i = sym.empty() ? -1 : 0; i >= 0; i = sym[static_cast<size_t>(i)].next) {
      const std::string_view piece(s.data() + sym[static_cast<size_t>(i)].begin, sym[static_cast<size_t>(i)].len);
      if (auto it = token_ids_.find(std::string(piece)); it != token_ids_.end()) {
        out.push_back(it->second);
        continue;
      }
      for (char c : piece) {
        const int32_t b = byte_token_[static_cast<uint8_t>(c)];
        if (b >= 0) out.push_back(b);
        else if (o_.unk_id >= 0) out.push_back(o_.unk_id);
        else throw Error("character not in the vocabulary, and the vocabulary has neither byte tokens nor <unk>");
      }
    }
  }

  // Priority of merging the pair that spans `merged`, split after `left_len` bytes; none if not mergeable.
  std::optional<double> priority(std::string_view merged, size_t left_len) const {
    if (!o_.merges.empty()) {
      std::string pair(merged.substr(0, left_len));
      pair += ' ';
      pair += merged.substr(left_len);
      auto it = merge_rank_.find(pair);
      if (it == merge_rank_.end()) return std::nullopt;
      return -static_cast<double>(it->second);
    }
    auto it = token_ids_.find(std::string(merged));
    if (it == token_ids_.end()) return std::nullopt;
    return o_.scores[static_cast<size_t>(it->second)];
  }

  TokenizerSpec o_;  // vocab and added tokens moved out to the base
  std::unordered_map<std::string, int32_t> merge_rank_;
  std::array<int32_t, 256> byte_token_{};
  std::unordered_map<int32_t, char> byte_of_token_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_sentencepiece_bpe(TokenizerSpec spec) {
  return std::make_unique<SentencePieceBpe>(std::move(spec));
}

}  // namespace longqa
