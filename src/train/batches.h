// Where training rows come from. A row is `t` input tokens, the `t` tokens to predict (the inputs
// shifted by one), a mask of the positions that count in the loss and, per position, the first
// position it may attend to.
//  - PackedStream: a Megatron dataset (`data pretrain`) read as one token stream and cut into
//    windows of t + 1 tokens; every position counts. Windows are visited in a seeded permutation,
//    epoch after epoch.
//    Every position sees the whole window: documents joined by `<s>` attend across it, as in
//    Megatron-LM's default (no attention reset) and ChatQA-2's continued pretraining.
//  - SftSamples: chat samples (`data long-sft` JSONL, `messages` or NeMo `input`/`output`) rendered
//    in the ChatQA format, BOS first, EOS after the answer; only the answer and its EOS count.
//    Samples are packed into rows (a seeded order, each row filled while the next sample fits) and
//    each attends only to itself, so short samples cost no padding; samples longer than t + 1 tokens
//    are left out and counted.
// Both are deterministic in (seed, row index) and immutable once loaded; fill() is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace longqa {
class Tokenizer;
}
namespace longqa::data {
class IndexedDatasetReader;
}

namespace longqa::train {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Row `index` of the run (0, 1, 2, ... across steps and micro-batches).
  virtual void fill(uint64_t index, int64_t t, int32_t* inputs, int32_t* targets, uint8_t* mask, int32_t* first_key) const = 0;
  virtual uint64_t rows_per_epoch() const = 0;
  virtual std::string describe() const = 0;
};

// `data` is a Megatron prefix, or a .jsonl file (plain, .gz or .zst) of SFT samples.
std::unique_ptr<BatchSource> open_batches(const std::string& data, const Tokenizer& tokenizer, int64_t t, int32_t bos, int32_t eos,
                                          uint64_t seed);

}  // namespace longqa::train
