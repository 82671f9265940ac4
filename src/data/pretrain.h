// Continued-pretraining data, the ChatQA-2 way: JSONL corpora (SlimPajama as distributed, or any JSONL
// with a text field and a source field) → per-source length upsampling (Fu et al. 2024) → documents
// tokenized without BOS/EOS and joined by a separator string ("<s>") → a Megatron indexed dataset of
// fixed-length sequences, plus a JSON report.
//
// Per-source length upsampling, as Fu et al.'s public code (slimpajama_packing.py, mode per_source)
// implements it: every source gets a token budget, its share of the total (`mix`, by default the
// input's own shares) times `tokens`; within a source, a document whose estimated length (Unicode
// characters / chars_per_token, judged before tokenizing) is under `short_threshold` tokens is kept
// with probability `short_keep` and every longer document is kept, until the source's budget is spent.
// So long documents are upsampled inside every source while the sources keep their shares. ChatQA-2
// used short_keep = 0.1 (the `chatqa2` preset).
//
// Streaming and bounded in memory: the input is read in batches of `batch_bytes`, each batch parsed
// and tokenized on all threads, then written in input order — the output depends on the seed, never
// on the thread count. After every batch, PREFIX.bin is synced and PREFIX.state.json records where the
// run stands; a killed run continues with `resume` and produces the same bytes as an uninterrupted one.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace longqa {
class Tokenizer;
}

namespace longqa::data {

struct PretrainOptions {
  uint64_t seq_len = 131072;
  std::string separator = "<s>";                          // plain text between documents, tokenized as text
  std::string text_field = "text";                        // dotted paths into each JSON record
  std::string source_field = "meta.redpajama_set_name";  // empty: every record is of one source, "all"
  double short_keep = 1.0;         // probability of keeping a short document (Fu et al.'s down_sample_ratio)
  double short_threshold = 4096;   // estimated tokens under which a document is short
  double chars_per_token = 3.68;   // Fu et al.'s LLAMA_CHAR_TO_TOKEN_RATIO, for the estimate
  std::map<std::string, double> mix;  // target token shares per source (normalised); empty: the input's
  uint64_t tokens = 0;                // total tokens to write (separators included); 0: the whole input
  uint64_t seed = 0;
  int threads = 0;                    // 0: all cores
  bool strict = false;                // the first bad line ends the run instead of being counted
  bool resume = false;                // continue the unfinished run recorded in PREFIX.state.json
  size_t batch_bytes = size_t{32} << 20;
  uint64_t stop_after_batches = 0;    // leave the run unfinished after this many batches (tests of resume)
  std::string tokenizer_name;         // for the report
};

// Fills `o` with a named preset's settings: "chatqa2" (SlimPajama's source mix, short_keep 0.1 under
// 4,096 tokens, "<s>" separators, 131,072-token sequences, 10B tokens).
void apply_preset(const std::string& name, PretrainOptions& o);

// Parses "RedPajamaBook=0.04,RedPajamaArXiv=0.04" (shares need not sum to 1: they are normalised).
std::map<std::string, double> parse_mix(const std::string& text);
// Parses a token count: "131072", "64k", "100m", "10b" (powers of ten; k = 1e3).
uint64_t parse_count(const std::string& text);

// Runs the job; writes PREFIX.bin, PREFIX.idx and PREFIX.report.json and returns the report. Throws
// Error when nothing can be read, or on the first bad line under `strict`. Returns a report with
// "finished": false when stopped by stop_after_batches.
nlohmann::json run_pretrain(const Tokenizer& tokenizer, const std::vector<std::string>& files, const std::string& prefix,
                            const PretrainOptions& o);

}  // namespace longqa::data
