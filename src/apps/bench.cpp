#include "apps/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "apps/model_args.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/transformer.h"
#include "util/error.h"

namespace longqa::apps {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

}  // namespace

void run_bench(const BenchOptions& o) {
  if (o.prompt < 0 || o.generate < 0 || o.depth < 0 || o.repetitions < 1) throw Error("bench: counts must not be negative");
  const kernels::WType kv_type = parse_kv_type(o.kv_type);
  const auto model = Model::load(o.model, {.rope = {}, .weights = residency(o.mmap)});
  const ModelConfig& c = model->config();
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t ctx = o.depth + std::max(o.prompt, o.generate) + 1;
  Session s(*model, {.context = ctx, .batch = 512, .threads = threads, .kv_type = kv_type});

  std::mt19937 rng(42);
  auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(c.vocab_size));
    return ids;
  };
  if (o.depth > 0) s.decode(random_tokens(o.depth));

  // Bytes of weights read per decoded token: every matrix once, one embedding row.
  const Weights& w = model->weights();
  double weight_bytes = static_cast<double>(w.output.bytes()) + static_cast<double>(w.embedding.row_stride());
  const double output_params = static_cast<double>(w.output.rows * w.output.cols);
  double layer_params = 0;
  for (const LayerWeights& l : w.layers)
    for (const kernels::MatrixView* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      weight_bytes += static_cast<double>(m->bytes());
      layer_params += static_cast<double>(m->rows * m->cols);
    }
  const double kv_row_bytes = 2.0 * static_cast<double>(c.n_layers * c.n_kv_heads) * static_cast<double>(kernels::row_bytes(kv_type, c.head_dim));
  auto attention_flops = [&](double positions) { return 4.0 * c.n_layers * c.n_heads * c.head_dim * positions; };

  std::vector<double> pp_s, tg_s;
  for (int r = 0; r < o.repetitions; ++r) {
    if (o.prompt > 0) {
      const auto ids = random_tokens(o.prompt);
      s.rewind(o.depth);
      const auto t0 = Clock::now();
      s.decode(ids);
      pp_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    if (o.generate > 0) {
      s.rewind(o.depth);
      s.decode(random_tokens(1));
      std::vector<int32_t> next = {1};
      const auto t0 = Clock::now();
      for (int64_t i = 0; i < o.generate; ++i) {
        const auto logits = s.decode(next);
        next[0] = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      }
      tg_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
  }
  const double pp_tok_s = pp_s.empty() ? 0 : static_cast<double>(o.prompt) / median(pp_s);
  const double tg_tok_s = tg_s.empty() ? 0 : static_cast<double>(o.generate) / median(tg_s);
  const double tg_positions = static_cast<double>(o.depth) + 1 + static_cast<double>(o.generate) / 2;
  const double gb_s = tg_tok_s * (weight_bytes + kv_row_bytes * tg_positions) / 1e9;
  const double pp_positions = static_cast<double>(o.depth) + static_cast<double>(o.prompt) / 2;
  // A prompt's logits are its last token's only: the output matrix runs once per prompt, not per token.
  const double pp_flops = 2 * layer_params + 2 * output_params / static_cast<double>(std::max<int64_t>(o.prompt, 1)) +
                          attention_flops(pp_positions);
  const double gflop_s = pp_tok_s * pp_flops / 1e9;

  if (o.json) {
    std::printf("{\"model\": \"%s\", \"threads\": %d, \"depth\": %lld, \"pp\": %lld, \"tg\": %lld, \"pp_tok_s\": %.3f, "
                "\"tg_tok_s\": %.3f, \"gb_s\": %.3f, \"gflop_s\": %.3f, \"peak_rss_mb\": %.1f}\n",
                o.model.c_str(), threads, static_cast<long long>(o.depth), static_cast<long long>(o.prompt),
                static_cast<long long>(o.generate), pp_tok_s, tg_tok_s, gb_s, gflop_s, peak_rss_mb());
    return;
  }
  std::printf("model:    %s (%.2f GB of weights read per token)\n", o.model.c_str(), weight_bytes / 1e9);
  std::printf("threads:  %d, depth %lld, KV cache %s (%.2f GB), repetitions %d (medians)\n", threads,
              static_cast<long long>(o.depth), o.kv_type.c_str(), static_cast<double>(s.cache_bytes()) / 1e9, o.repetitions);
  if (o.prompt > 0) std::printf("pp%-6lld %10.2f tok/s  %8.1f GFLOP/s\n", static_cast<long long>(o.prompt), pp_tok_s, gflop_s);
  if (o.generate > 0) std::printf("tg%-6lld %10.2f tok/s  %8.2f GB/s\n", static_cast<long long>(o.generate), tg_tok_s, gb_s);
  std::printf("peak RSS: %.1f MB\n", peak_rss_mb());
}

}  // namespace longqa::apps
