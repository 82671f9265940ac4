// Tokenizer — text to token ids and back, exactly as the model's reference tokenizer does it.
// Two algorithms sit behind this interface: byte-level BPE (GPT-2 style; Llama-3, Qwen2) and
// SentencePiece-style BPE (Llama-2, Mistral). Added/special tokens written in the text are matched
// before either runs. Immutable after construction; encode/decode are safe from many threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace longqa {

// A memo of pre-token -> ids that one thread keeps across encode() calls (a worker chunking a corpus:
// natural text repeats its words). Bounded: emptied when it holds max_entries pre-tokens. Not
// thread-safe: one per thread. encode() makes a short-lived one by itself for long texts.
class EncodeCache {
 public:
  explicit EncodeCache(size_t max_entries = size_t{1} << 18) : max_entries_(max_entries) {}
  // The memoised ids of a pre-token; false when it is not memoised.
  bool find(std::string_view piece, std::vector<int32_t>& out) const;
  void add(std::string_view piece, std::span<const int32_t> ids);

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Span {
    uint32_t begin, size;
  };
  std::unordered_map<std::string, Span, Hash, std::equal_to<>> spans_;
  std::vector<int32_t> ids_;
  size_t max_entries_;
};

class Tokenizer {
 public:
  struct AddedToken {
    std::string content;
    int32_t id;
    bool special;  // control token (not part of plain text)
  };

  virtual ~Tokenizer() = default;

  // HF `encode(text, add_special_tokens=False)`: no BOS; special tokens in the text are recognised
  // when parse_special is true.
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true, EncodeCache* cache = nullptr) const;

  // The exact bytes of a sequence of ids (not necessarily valid UTF-8 mid-sequence). Special tokens are
  // rendered as their text unless skip_special.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  // The bytes of one token, as generated text is streamed (a view into a table built at load).
  std::string_view piece(int32_t id) const;

  int32_t vocab_size() const { return static_cast<int32_t>(vocab_.size()); }
  const std::string& token_text(int32_t id) const { return vocab_.at(static_cast<size_t>(id)); }
  std::optional<int32_t> find(std::string_view token) const;
  bool is_special(int32_t id) const;
  const std::vector<AddedToken>& added_tokens() const { return added_; }
  virtual std::string kind() const = 0;  // "byte-level BPE" / "SentencePiece BPE", for `info`

 protected:
  Tokenizer(std::vector<std::string> vocab, std::vector<AddedToken> added);

  // Encodes text that contains no added tokens; at_start tells whether it begins the whole input.
  // cache, when not null, may memoise pre-tokens (algorithms that split text into pre-tokens use it).
  virtual void encode_plain(std::string_view text, bool at_start, std::vector<int32_t>& out, EncodeCache* cache) const = 0;
  virtual std::string token_bytes(int32_t id) const = 0;
  // Post-processing of a whole decoded sequence (e.g. the SentencePiece leading space).
  virtual void finish_decode(std::string&) const {}
  // Fills the piece table from token_bytes(); derived constructors call it last.
  void build_pieces();

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t> token_ids_;

 private:
  std::vector<AddedToken> added_;
  std::vector<std::string> pieces_;
  std::unordered_map<int32_t, size_t> added_by_id_;
  // Added tokens grouped by first byte, longest first: a text is scanned once, byte by byte.
  std::vector<std::vector<const AddedToken*>> added_by_first_byte_;
};

// GPT-2's printable stand-in (UTF-8) for each byte: the alphabet of byte-level vocabularies.
std::array<std::string, 256> byte_level_chars();

// Loads the tokenizer of a model: a GGUF file, an HF model directory, or a tokenizer.json.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

namespace gguf {
class File;
}
std::unique_ptr<Tokenizer> tokenizer_from_gguf(const gguf::File& f);
std::unique_ptr<Tokenizer> tokenizer_from_json_file(const std::string& path);

}  // namespace longqa
