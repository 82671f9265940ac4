// Training a byte-level BPE tokenizer (the kind Llama-3 uses) on a text corpus, written as a
// `tokenizer.json` that Hugging Face tokenizers and longqa load alike: Llama-3's pre-tokenizer regex,
// bytes mapped to GPT-2's printable characters, merges applied by rank (ignore_merges off, so both
// libraries segment every word the same way), and special tokens <|begin_of_text|> (BOS, added by
// the post-processor as Llama-3 does) and <|end_of_text|> appended after the learned vocabulary.
//
// Training: the corpus is pre-tokenized and its words counted on all threads; then, repeatedly, the
// most frequent adjacent pair of symbols (ties: the pair of smaller ids) becomes a new symbol, until
// the vocabulary has the size asked for or no pair occurs `min_frequency` times. Deterministic.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace longqa::data {

struct BpeTrainOptions {
  size_t vocab_size = 8192;  // in all: 256 bytes + merges + special tokens
  uint64_t min_frequency = 2;
  std::vector<std::string> special_tokens = {"<|begin_of_text|>", "<|end_of_text|>"};
  int threads = 0;
};

struct BpeTrainResult {
  nlohmann::ordered_json tokenizer;  // the tokenizer.json document
  uint64_t bytes = 0, words = 0, unique_words = 0, merges = 0;
  double seconds = 0;
};

// Trains on the files (plain text, .gz or .zst; read as UTF-8 text, invalid bytes kept as bytes).
BpeTrainResult train_bpe(const std::vector<std::string>& files, const BpeTrainOptions& o);

}  // namespace longqa::data
