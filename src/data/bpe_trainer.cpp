#include "data/bpe_trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <queue>
#include <unordered_map>

#include "data/line_reader.h"
#include "engine/pretokenizer.h"
#include "engine/tokenizer.h"
#include "util/error.h"

namespace longqa::data {

using ordered_json = nlohmann::ordered_json;

namespace {

using WordCounts = std::unordered_map<std::string, uint64_t>;

// Reads the corpus in chunks of a few MB, cut only before a line that starts with a non-space
// character, so that no pre-token (a run of whitespace, say) is split across two chunks.
class ChunkReader {
 public:
  explicit ChunkReader(const std::vector<std::string>& files) : files_(files) {}
  bool next(std::string& chunk) {
    chunk.clear();
    constexpr size_t kTarget = size_t{4} << 20, kLimit = size_t{64} << 20;
    while (file_ < files_.size()) {
      if (!reader_) reader_ = std::make_unique<LineReader>(files_[file_]);
      if (has_pending_) {
        chunk += pending_;
        chunk += '\n';
        has_pending_ = false;
      }
      while (reader_->next(pending_)) {
        const bool clean_cut = !pending_.empty() && !std::isspace(static_cast<unsigned char>(pending_[0]));
        if ((chunk.size() >= kTarget && clean_cut) || chunk.size() >= kLimit) {
          has_pending_ = true;
          return true;
        }
        chunk += pending_;
        chunk += '\n';
      }
      reader_.reset();
      ++file_;
      if (!chunk.empty()) return true;  // a file's end is a clean cut
    }
    return !chunk.empty();
  }

 private:
  const std::vector<std::string>& files_;
  size_t file_ = 0;
  std::unique_ptr<LineReader> reader_;
  std::string pending_;
  bool has_pending_ = false;
};

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

// The merge loop over the counted words.
class Merger {
 public:
  Merger(const WordCounts& counts, uint64_t min_frequency) : min_frequency_(min_frequency) {
    for (int b = 0; b < 256; ++b) {
      bytes_.emplace_back(1, static_cast<char>(b));
      ids_.emplace(bytes_.back(), b);
    }
    // Sorted words: the order of the pair lists (and so of the result) never depends on hashing.
    std::vector<std::pair<std::string, uint64_t>> sorted(counts.begin(), counts.end());
    std::sort(sorted.begin(), sorted.end());
    for (auto& [word, count] : sorted) {
      std::vector<int32_t> symbols(word.size());
      for (size_t i = 0; i < word.size(); ++i) symbols[i] = static_cast<unsigned char>(word[i]);
      words_.push_back(std::move(symbols));
      counts_.push_back(count);
    }
    for (uint32_t w = 0; w < words_.size(); ++w)
      for (size_t i = 0; i + 1 < words_[w].size(); ++i) {
        const uint64_t k = pair_key(words_[w][i], words_[w][i + 1]);
        pairs_[k] += static_cast<int64_t>(counts_[w]);
        where_[k].push_back(w);
      }
    for (const auto& [k, c] : pairs_) heap_.emplace(c, ~k);
  }

  // Learns merges until the vocabulary holds `size` tokens or no pair is frequent enough.
  void run(size_t size) {
    while (bytes_.size() < size) {
      if (heap_.empty()) return;
      const auto [count, inverted] = heap_.top();
      heap_.pop();
      const uint64_t k = ~inverted;
      const auto it = pairs_.find(k);
      const int64_t now = it == pairs_.end() ? 0 : it->second;
      if (now != count) {  // a stale entry: requeue the pair at its current count
        if (now > 0) heap_.emplace(now, inverted);
        continue;
      }
      if (static_cast<uint64_t>(count) < min_frequency_) return;
      merge(static_cast<int32_t>(k >> 32), static_cast<int32_t>(k & 0xffffffffu));
    }
  }

  const std::vector<std::string>& token_bytes() const { return bytes_; }
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merges_; }

 private:
  void merge(int32_t a, int32_t b) {
    const std::string joined = bytes_[static_cast<size_t>(a)] + bytes_[static_cast<size_t>(b)];
    // Two merge paths may spell the same bytes ("ab"+"c", "a"+"bc"): they share one token.
    auto [found, fresh] = ids_.emplace(joined, static_cast<int32_t>(bytes_.size()));
    if (fresh) bytes_.push_back(joined);
    const int32_t c = found->second;
    merges_.emplace_back(a, b);

    std::vector<uint32_t> affected = std::move(where_[pair_key(a, b)]);
    where_.erase(pair_key(a, b));
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    std::unordered_map<uint64_t, int64_t> delta;
    std::vector<int32_t> out;
    for (const uint32_t w : affected) {
      std::vector<int32_t>& s = words_[w];
      const auto n = static_cast<int64_t>(counts_[w]);
      out.clear();
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          out.push_back(c);
          ++i;
        } else {
          out.push_back(s[i]);
        }
      }
      if (out.size() == s.size()) continue;  // a stale entry: the pair is gone from this word
      for (size_t i = 0; i + 1 < s.size(); ++i) delta[pair_key(s[i], s[i + 1])] -= n;
      for (size_t i = 0; i + 1 < out.size(); ++i) {
        const uint64_t k = pair_key(out[i], out[i + 1]);
        delta[k] += n;
        if (out[i] == c || out[i + 1] == c) where_[k].push_back(w);
      }
      s.swap(out);
    }
    for (const auto& [k, d] : delta) {
      if (d == 0) continue;
      int64_t& v = pairs_[k];
      v += d;
      if (v <= 0) pairs_.erase(k);
      else if (d > 0) heap_.emplace(v, ~k);
    }
  }

  uint64_t min_frequency_;
  std::vector<std::vector<int32_t>> words_;
  std::vector<uint64_t> counts_;
  std::unordered_map<uint64_t, int64_t> pairs_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where_;
  std::priority_queue<std::pair<int64_t, uint64_t>> heap_;  // (count, ~pair): ties go to the smaller pair
  std::vector<std::string> bytes_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::pair<int32_t, int32_t>> merges_;
};

ordered_json tokenizer_document(const Merger& m, const std::vector<std::string>& specials) {
  const auto chars = byte_level_chars();
  auto printable = [&](const std::string& bytes) {
    std::string s;
    for (const char ch : bytes) s += chars[static_cast<unsigned char>(ch)];
    return s;
  };
  const std::vector<std::string>& tokens = m.token_bytes();
  ordered_json vocab = ordered_json::object();
  for (size_t id = 0; id < tokens.size(); ++id) vocab[printable(tokens[id])] = id;
  ordered_json merges = ordered_json::array();
  for (const auto& [a, b] : m.merges())
    merges.push_back(printable(tokens[static_cast<size_t>(a)]) + " " + printable(tokens[static_cast<size_t>(b)]));
  ordered_json added = ordered_json::array();
  for (size_t i = 0; i < specials.size(); ++i)
    added.push_back({{"id", tokens.size() + i}, {"content", specials[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});

  ordered_json doc;
  doc["version"] = "1.0";
  doc["truncation"] = nullptr;
  doc["padding"] = nullptr;
  doc["added_tokens"] = added;
  doc["normalizer"] = nullptr;
  doc["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers",
                           {{{"type", "Split"}, {"pattern", {{"Regex", regex::kLlama3}}}, {"behavior", "Isolated"}, {"invert", false}},
                            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
  if (!specials.empty()) {  // BOS first, as Llama-3's post-processor adds it
    const ordered_json bos = {{"SpecialToken", {{"id", specials[0]}, {"type_id", 0}}}};
    doc["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", {bos, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair", {bos, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, bos, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens", {{specials[0], {{"id", specials[0]}, {"ids", {tokens.size()}}, {"tokens", {specials[0]}}}}}}};
  } else {
    doc["post_processor"] = nullptr;
  }
  doc["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  doc["model"] = {{"type", "BPE"},         {"dropout", nullptr},        {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", false},
                  {"byte_fallback", false}, {"ignore_merges", false},   {"vocab", vocab},
                  {"merges", merges}};
  return doc;
}

}  // namespace

BpeTrainResult train_bpe(const std::vector<std::string>& files, const BpeTrainOptions& o) {
  if (files.empty()) throw Error("no corpus files");
  if (o.vocab_size < 256 + o.special_tokens.size())
    throw Error("--vocab must hold the 256 byte tokens and " + std::to_string(o.special_tokens.size()) + " special tokens");
  const auto start = std::chrono::steady_clock::now();
  const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  BpeTrainResult r;

  // 1. Words and their counts, chunk by chunk on all threads.
  const Pretokenizer pretokenizer(regex::kLlama3);
  WordCounts counts;
  ChunkReader reader(files);
  std::vector<std::string> chunks(static_cast<size_t>(threads));
  std::vector<WordCounts> local(static_cast<size_t>(threads));
  std::vector<uint64_t> words(static_cast<size_t>(threads), 0);
  for (bool more = true; more;) {
    size_t n = 0;
    while (n < chunks.size() && (more = reader.next(chunks[n]))) r.bytes += chunks[n++].size();
#pragma omp parallel for schedule(static, 1) num_threads(threads)
    for (size_t i = 0; i < n; ++i)
      pretokenizer.split(chunks[i], [&](std::string_view piece) {
        ++local[i][std::string(piece)];
        ++words[i];
      });
    for (size_t i = 0; i < n; ++i) {
      for (auto& [w, c] : local[i]) counts[w] += c;
      local[i].clear();
    }
  }
  for (const uint64_t w : words) r.words += w;
  r.unique_words = counts.size();
  if (counts.empty()) throw Error("the corpus is empty");

  // 2. Merges, then the document.
  Merger merger(counts, std::max<uint64_t>(1, o.min_frequency));
  counts.clear();
  merger.run(o.vocab_size - o.special_tokens.size());
  r.merges = merger.merges().size();
  r.tokenizer = tokenizer_document(merger, o.special_tokens);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace longqa::data
