// What a tokenizer is made of, independent of the file it came from: the loaders (tokenizer.json,
// GGUF keys) produce a TokenizerSpec, `convert` writes one into GGUF, make_tokenizer builds the
// encoder. Internal to the engine: everything else sees only the Tokenizer interface.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer.h"

namespace longqa {

using MergeList = std::vector<std::pair<std::string, std::string>>;

struct TokenizerSpec {
  // ByteLevelBpe: GPT-2 style (Llama-3, Qwen2). SentencePiece: `▁`-marked text with byte fallback
  // (Llama-2, Mistral); merges by rank when `merges` is given, else by the merged piece's score.
  enum class Kind { ByteLevelBpe, SentencePiece } kind = Kind::ByteLevelBpe;
  std::vector<std::string> vocab;
  std::vector<Tokenizer::AddedToken> added;
  MergeList merges;
  std::string pattern;          // byte-level pre-tokenizer regex
  bool ignore_merges = false;   // byte-level: a pre-token in the vocabulary is emitted whole (Llama-3)
  std::vector<float> scores;    // SentencePiece
  bool add_space_prefix = true; // SentencePiece: mark the start of text with ▁ ...
  bool prefix_first_only = false;  // ... only at the start of the input, not after each special token
  bool split_words = false;        // Metaspace(split=true): merges stay within ▁-started words
  int32_t unk_id = -1;          // SentencePiece
};

TokenizerSpec tokenizer_spec_from_json_file(const std::string& path);
std::unique_ptr<Tokenizer> make_tokenizer(TokenizerSpec spec);

// The GGUF `tokenizer.ggml.pre` name of a byte-level pattern, or "" when it is none of the known ones.
std::string gguf_pre_name(const std::string& pattern);

}  // namespace longqa
