#include "engine/tokenizer.h"

#include <algorithm>

#include "util/error.h"

namespace longqa {

Tokenizer::Tokenizer(std::vector<std::string> vocab, std::vector<AddedToken> added)
    : vocab_(std::move(vocab)), added_(std::move(added)), added_by_first_byte_(256) {
  token_ids_.reserve(vocab_.size());
  for (size_t i = 0; i < vocab_.size(); ++i) token_ids_.emplace(vocab_[i], static_cast<int32_t>(i));
  for (size_t i = 0; i < added_.size(); ++i) {
    const AddedToken& t = added_[i];
    if (t.id < 0 || t.id >= static_cast<int32_t>(vocab_.size()))
      throw Error("added token '" + t.content + "' has id " + std::to_string(t.id) + " outside the vocabulary");
    added_by_id_.emplace(t.id, i);
    if (!t.content.empty()) added_by_first_byte_[static_cast<uint8_t>(t.content[0])].push_back(&t);
  }
  for (auto& group : added_by_first_byte_)
    std::stable_sort(group.begin(), group.end(),
                     [](const AddedToken* a, const AddedToken* b) { return a->content.size() > b->content.size(); });
}

bool EncodeCache::find(std::string_view piece, std::vector<int32_t>& out) const {
  const auto it = spans_.find(piece);
  if (it == spans_.end()) return false;
  out.insert(out.end(), ids_.begin() + it->second.begin, ids_.begin() + it->second.begin + it->second.size);
  return true;
}

void EncodeCache::add(std::string_view piece, std::span<const int32_t> ids) {
  if (spans_.size() >= max_entries_ || ids_.size() + ids.size() > UINT32_MAX) {
    spans_.clear();
    ids_.clear();
  }
  spans_.emplace(piece, Span{static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(ids.size())});
  ids_.insert(ids_.end(), ids.begin(), ids.end());
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special, EncodeCache* cache) const {
  // Below this size, filling a cache costs more than it saves.
  constexpr size_t kCacheMinBytes = 4096;
  EncodeCache local;
  if (!cache && text.size() >= kCacheMinBytes) cache = &local;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 1);
  size_t start = 0;
  if (parse_special) {
    for (size_t i = 0; i < text.size(); ++i) {
      for (const AddedToken* t : added_by_first_byte_[static_cast<uint8_t>(text[i])]) {
        if (text.compare(i, t->content.size(), t->content) != 0) continue;
        if (i > start) encode_plain(text.substr(start, i - start), start == 0, out, cache);
        out.push_back(t->id);
        start = i + t->content.size();
        i = start - 1;
        break;
      }
    }
  }
  if (start < text.size()) encode_plain(text.substr(start), start == 0, out, cache);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
    if (!(skip_special && is_special(id))) out += pieces_[static_cast<size_t>(id)];
  }
  finish_decode(out);
  return out;
}

void Tokenizer::build_pieces() {
  pieces_.resize(vocab_.size());
  for (size_t id = 0; id < vocab_.size(); ++id) pieces_[id] = token_bytes(static_cast<int32_t>(id));
  for (const AddedToken& t : added_) pieces_[static_cast<size_t>(t.id)] = t.content;
}

std::string_view Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
  return pieces_[static_cast<size_t>(id)];
}

std::optional<int32_t> Tokenizer::find(std::string_view token) const {
  auto it = token_ids_.find(std::string(token));
  if (it == token_ids_.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_special(int32_t id) const {
  auto it = added_by_id_.find(id);
  return it != added_by_id_.end() && added_[it->second].special;
}

}  // namespace longqa
