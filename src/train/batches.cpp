#include "train/batches.h"

#include <algorithm>
#include <numeric>

#include "data/chat_record.h"
#include "data/jsonl_records.h"
#include "data/line_reader.h"
#include "data/megatron_dataset.h"
#include "engine/tokenizer.h"
#include "util/error.h"
#include "util/random.h"

namespace longqa::train {

namespace {

using nlohmann::json;

// Position of the k-th visit in a seeded permutation of [0, n) that changes every epoch: an affine
// map k -> (a k + b) mod n with a coprime to n, drawn per epoch. Stateless, so fill() stays const.
uint64_t shuffled(uint64_t k, uint64_t n, uint64_t seed) {
  const uint64_t epoch = k / n;
  Rng rng(seed, 0x65706f6368ULL + epoch);
  uint64_t a = 1 + rng.below(n);
  while (std::gcd(a, n) != 1) a = a % n + 1;
  const uint64_t b = rng.below(n);
  return (a * (k % n) % n + b) % n;  // n < 2^32 (checked at load), so a * k fits 64 bits
}

class PackedStream final : public BatchSource {
 public:
  PackedStream(const std::string& prefix, int64_t t, uint64_t seed) : stream_(prefix), seed_(seed), prefix_(prefix) {
    windows_ = stream_.tokens() > 0 ? (stream_.tokens() - 1) / static_cast<uint64_t>(t) : 0;
    if (windows_ == 0) throw Error(prefix + ": " + std::to_string(stream_.tokens()) + " tokens make no window of --seq-len + 1");
    if (windows_ >= (uint64_t{1} << 32)) throw Error(prefix + ": more than 2^32 windows: use a longer --seq-len");
  }
  void fill(uint64_t index, int64_t t, int32_t* inputs, int32_t* targets, uint8_t* mask, int32_t* first_key) const override {
    const uint64_t start = shuffled(index, windows_, seed_) * static_cast<uint64_t>(t);
    stream_.read(start, static_cast<uint64_t>(t), inputs);
    stream_.read(start + 1, static_cast<uint64_t>(t), targets);
    std::fill(mask, mask + t, 1);
    std::fill(first_key, first_key + t, 0);
  }
  uint64_t rows_per_epoch() const override { return windows_; }
  std::string describe() const override {
    return prefix_ + ": " + std::to_string(stream_.tokens()) + " tokens, " + std::to_string(windows_) + " windows";
  }

 private:
  data::IndexedDatasetReader stream_;
  uint64_t seed_;
  std::string prefix_;
  uint64_t windows_ = 0;
};

class SftSamples final : public BatchSource {
 public:
  SftSamples(const std::string& path, const Tokenizer& tk, int64_t t, int32_t bos, int32_t eos, uint64_t seed)
      : path_(path), seed_(seed) {
    if (eos < 0) throw Error("the model has no EOS token to end SFT answers with");
    data::LineReader reader(path);
    for (std::string line; reader.next(line);) {
      json rec;
      data::RecordResult r = data::parse_object(line, rec);
      if (r.status == data::RecordStatus::Empty) continue;
      data::ChatRecord chat;
      if (r.status == data::RecordStatus::Ok)
        if (const std::string why = data::parse_chat_record(rec, chat); !why.empty()) r = {data::RecordStatus::Bad, "not an SFT sample: " + why};
      if (r.status == data::RecordStatus::Bad) throw Error(reader.where() + ": " + r.reason);
      const auto [prompt, answer] = data::chatqa_prompt(chat);
      std::vector<int32_t> tokens;
      if (bos >= 0) tokens.push_back(bos);
      const std::vector<int32_t> p = tk.encode(prompt, /*parse_special=*/false), a = tk.encode(" " + answer, false);
      tokens.insert(tokens.end(), p.begin(), p.end());
      const size_t answer_start = tokens.size();
      tokens.insert(tokens.end(), a.begin(), a.end());
      tokens.push_back(eos);
      if (static_cast<int64_t>(tokens.size()) > t + 1) {
        ++too_long_;
        continue;
      }
      samples_.push_back({tokens_.size(), tokens_.size() + tokens.size(), tokens_.size() + answer_start});
      tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
    }
    if (samples_.empty())
      throw Error(path + ": no sample fits --seq-len + 1 tokens (" + std::to_string(too_long_) + " are longer)");
    // A sample of n tokens takes n - 1 positions (its last token is only predicted). Rows are filled
    // in a seeded order of the samples; epochs visit the rows in a new order.
    Rng(seed, 0x7061636bULL).shuffle(samples_);
    int64_t used = 0;
    for (size_t s = 0; s < samples_.size(); ++s) {
      const auto positions = static_cast<int64_t>(samples_[s].end - samples_[s].begin) - 1;
      if (s == 0 || used + positions > t) {
        row_begin_.push_back(s);
        used = 0;
      }
      used += positions;
    }
    row_begin_.push_back(samples_.size());
  }

  void fill(uint64_t index, int64_t t, int32_t* inputs, int32_t* targets, uint8_t* mask, int32_t* first_key) const override {
    const uint64_t row = shuffled(index, rows_per_epoch(), seed_);
    int64_t at = 0;
    for (size_t s = row_begin_[row]; s < row_begin_[row + 1]; ++s) {
      const Sample& x = samples_[s];
      const auto first = static_cast<int32_t>(at);
      for (size_t k = x.begin; k + 1 < x.end; ++k, ++at) {
        inputs[at] = tokens_[k];
        targets[at] = tokens_[k + 1];
        mask[at] = k + 1 >= x.answer;  // the answer and its EOS
        first_key[at] = first;
      }
    }
    for (; at < t; ++at) {  // padding sees only itself
      inputs[at] = targets[at] = 0;
      mask[at] = 0;
      first_key[at] = static_cast<int32_t>(at);
    }
  }
  uint64_t rows_per_epoch() const override { return row_begin_.size() - 1; }
  std::string describe() const override {
    return path_ + ": " + std::to_string(samples_.size()) + " samples in " + std::to_string(rows_per_epoch()) + " rows" +
           (too_long_ ? ", " + std::to_string(too_long_) + " longer than --seq-len + 1 left out" : "");
  }

 private:
  struct Sample {
    size_t begin, end, answer;  // offsets in tokens_
  };
  std::string path_;
  uint64_t seed_;
  std::vector<int32_t> tokens_;
  std::vector<Sample> samples_;   // in packing order
  std::vector<size_t> row_begin_;  // row r holds samples_[row_begin_[r], row_begin_[r + 1])
  uint64_t too_long_ = 0;
};

bool is_jsonl(const std::string& path) {
  for (const char* ext : {".jsonl", ".jsonl.gz", ".jsonl.zst"})
    if (path.ends_with(ext)) return true;
  return false;
}

}  // namespace

std::unique_ptr<BatchSource> open_batches(const std::string& data, const Tokenizer& tokenizer, int64_t t, int32_t bos, int32_t eos,
                                          uint64_t seed) {
  if (is_jsonl(data)) return std::make_unique<SftSamples>(data, tokenizer, t, bos, eos, seed);
  return std::make_unique<PackedStream>(data, t, seed);
}

}  // namespace longqa::train
