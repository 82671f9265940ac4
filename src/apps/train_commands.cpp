#include "apps/train_commands.h"

#include <CLI/CLI.hpp>
#include <cstdio>

#include "train/trainer.h"

namespace longqa::apps {

struct TrainCommandState {
  train::TrainOptions o;
};

std::shared_ptr<TrainCommandState> add_train_commands(CLI::App& app) {
  auto s = std::make_shared<TrainCommandState>();
  train::TrainOptions& o = s->o;
  auto* t = app.add_subcommand("train", "train a Llama-architecture model on a Megatron .bin/.idx dataset");
  t->add_option("--data", o.data, "dataset prefix (PREFIX.bin, PREFIX.idx from `data pretrain`)")->required();
  t->add_option("--tokenizer", o.tokenizer, "tokenizer.json or GGUF written into the checkpoints")->required();
  t->add_option("--out", o.out, "checkpoint (GGUF); OUT.optim and OUT.csv beside it")->required();
  t->add_option("--init", o.init, "continue from this GGUF model instead of a new one");
  t->add_option("--rope-theta", o.rope_theta, "RoPE base (raise it to extend the context)");
  t->add_option("--context", o.context, "context length the checkpoint declares (default: at least --seq-len)");
  t->add_option("--hidden", o.shape.hidden, "a new model's width")->capture_default_str();
  t->add_option("--layers", o.shape.layers, "... layers")->capture_default_str();
  t->add_option("--heads", o.shape.heads, "... attention heads")->capture_default_str();
  t->add_option("--kv-heads", o.shape.kv_heads, "... key/value heads")->capture_default_str();
  t->add_option("--ffn", o.shape.ffn, "... feed-forward width")->capture_default_str();
  t->add_flag("--tied", o.shape.tied, "... with the output matrix tied to the embedding");
  t->add_option("--seq-len", o.seq_len, "tokens per training sequence")->capture_default_str();
  t->add_option("--batch", o.batch, "sequences per micro-batch")->capture_default_str();
  t->add_option("--accumulation", o.accumulation, "micro-batches per step")->capture_default_str();
  t->add_option("--steps", o.steps, "optimizer steps")->capture_default_str();
  t->add_option("--warmup", o.warmup, "linear warmup steps")->capture_default_str();
  t->add_option("--lr", o.lr, "peak learning rate")->capture_default_str();
  t->add_option("--min-lr", o.min_lr, "learning rate at the end of the cosine")->capture_default_str();
  t->add_option("--weight-decay", o.weight_decay, "AdamW decay of the matrices")->capture_default_str();
  t->add_option("--clip", o.clip, "global gradient-norm clip (0: none)")->capture_default_str();
  t->add_option("--seed", o.seed, "seed of the initialisation and the data order")->capture_default_str();
  t->add_option("-t,--threads", o.threads, "worker threads (default: all cores)");
  t->add_option("--checkpoint-every", o.checkpoint_every, "steps between checkpoints (default: the end only)");
  t->add_option("--stop-at", o.stop_at, "stop after this step, checkpointed (continue with --resume)");
  t->add_flag("--resume", o.resume, "continue the run checkpointed at --out");
  t->add_option("--average-from", o.average_from,
                "the final checkpoint is the mean of the weights after this step and every --average-every steps after it");
  t->add_option("--average-every", o.average_every, "steps between the averaged snapshots");
  t->callback([s] {
    const train::TrainReport r = train::run_training(s->o);
    std::printf("data: %s\ntrained %lld steps: loss %.4f -> %.4f, %.0f tokens/s, %.1f s; checkpoint %s (log %s.csv)\n",
                r.data.c_str(), static_cast<long long>(r.steps), r.first_loss, r.last_loss, r.tokens_per_s, r.seconds,
                s->o.out.c_str(), s->o.out.c_str());
  });
  return s;
}

}  // namespace longqa::apps
