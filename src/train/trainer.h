// The training loop of `longqa train`: next-token prediction over a Megatron dataset (the `.bin/.idx`
// that `longqa data pretrain` writes, read as one stream and cut into windows of seq_len + 1 tokens,
// shuffled per epoch by the seed), AdamW with decoupled weight decay on matrices only, linear warmup
// then cosine decay, global-norm gradient clipping, gradient accumulation. Checkpoints are GGUF files
// the engine loads as they are, with the optimizer's moments beside them (OUT.optim) so that a run
// resumes exactly; every step is logged to OUT.csv. Deterministic for a seed and thread count.
// Tail averaging (--average-from, --average-every): the checkpoint at the end holds the mean of the
// weights after steps F, F + E, ..., --steps (a noisy short fine-tune's last steps, averaged); the
// running sum sits beside the checkpoints (OUT.average) so that a cut run resumes exactly.
#pragma once

#include <cstdint>
#include <string>

#include "train/train_model.h"

namespace longqa::train {

struct TrainOptions {
  std::string data;       // PREFIX of PREFIX.bin / PREFIX.idx
  std::string tokenizer;  // tokenizer.json or GGUF file: written into every checkpoint
  std::string init;       // a GGUF model to continue from; empty: a new model of `shape`
  TrainConfig shape;      // for a new model (vocab: the tokenizer's when 0)
  double rope_theta = 0;  // > 0: the RoPE base (context extension raises it)
  int64_t context = 0;    // the context length the checkpoint declares; 0: at least --seq-len
  int64_t seq_len = 512, batch = 8, accumulation = 1, steps = 1000, warmup = 100;
  double lr = 1e-3, min_lr = 1e-4, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, clip = 1.0;
  uint64_t seed = 0;
  int threads = 0;
  std::string out;               // checkpoint path (GGUF); OUT.optim and OUT.csv beside it
  int64_t checkpoint_every = 0;  // steps; 0: only at the end
  int64_t stop_at = 0;           // end this invocation after that step (checkpointed; resume later)
  bool resume = false;           // continue from OUT and OUT.optim
  int64_t average_from = 0;      // > 0: the final checkpoint is the mean of the weights after this step,
  int64_t average_every = 0;     // ... and every this many steps after it up to --steps
};

struct TrainReport {
  int64_t steps = 0;
  double first_loss = 0, last_loss = 0, seconds = 0, tokens_per_s = 0;
  std::string data;  // what the rows came from: tokens and windows, or samples, rows and those left out
};

TrainReport run_training(const TrainOptions& o);

// The learning rate at a step (0-based): linear warmup to lr, then cosine down to min_lr.
double learning_rate(const TrainOptions& o, int64_t step);

// One AdamW update of every parameter; matrices decay, norms (1-D tensors) do not.
class AdamW {
 public:
  explicit AdamW(TrainModel& m);
  void step(TrainModel& m, const TrainOptions& o, double lr, int threads);
  int64_t steps() const { return t_; }
  void save(const std::string& path) const;
  void load(const std::string& path);

 private:
  std::vector<float> m_, v_;
  std::vector<uint8_t> decay_;  // per parameter
  int64_t t_ = 0;
};

}  // namespace longqa::train
