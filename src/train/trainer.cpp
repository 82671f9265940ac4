#include "train/trainer.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <vector>

#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "train/batches.h"
#include "train/pass.h"
#include "train/plot.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/mapped_file.h"
#include "util/progress.h"

namespace longqa::train {

namespace fs = std::filesystem;

double learning_rate(const TrainOptions& o, int64_t step) {
  if (step < o.warmup) return o.lr * static_cast<double>(step + 1) / static_cast<double>(o.warmup);
  const double progress =
      std::min(1.0, static_cast<double>(step - o.warmup) / static_cast<double>(std::max<int64_t>(1, o.steps - o.warmup)));
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1 + std::cos(M_PI * progress));
}

AdamW::AdamW(TrainModel& m) : m_(m.params().size()), v_(m.params().size()), decay_(m.params().size(), 1) {
  // Norm gains do not decay: mark their ranges.
  const ModelTensors<float*> t = m.weights();
  const float* base = m.params().data();
  const auto d = static_cast<size_t>(m.config().hidden);
  auto no_decay = [&](const float* p) { std::fill_n(decay_.begin() + (p - base), d, 0); };
  for (const auto& L : t.layers) {
    no_decay(L.attn_norm);
    no_decay(L.ffn_norm);
  }
  no_decay(t.output_norm);
}

void AdamW::step(TrainModel& model, const TrainOptions& o, double lr, int threads) {
  ++t_;
  const double c1 = 1 - std::pow(o.beta1, static_cast<double>(t_)), c2 = 1 - std::pow(o.beta2, static_cast<double>(t_));
  const auto b1 = static_cast<float>(o.beta1), b2 = static_cast<float>(o.beta2);
  const auto step_size = static_cast<float>(lr / c1), root_c2 = static_cast<float>(std::sqrt(c2));
  const auto eps = static_cast<float>(o.eps), wd = static_cast<float>(lr * o.weight_decay);
  float* p = model.params().data();
  const float* g = model.grads().data();
  const auto n = static_cast<int64_t>(m_.size());
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) {
    m_[i] = b1 * m_[i] + (1 - b1) * g[i];
    v_[i] = b2 * v_[i] + (1 - b2) * g[i] * g[i];
    if (decay_[i]) p[i] -= wd * p[i];
    p[i] -= step_size * m_[i] / (std::sqrt(v_[i]) / root_c2 + eps);
  }
}

namespace {
constexpr char kOptimMagic[8] = {'L', 'Q', 'A', 'D', 'A', 'M', 'W', '1'};
constexpr char kAverageMagic[8] = {'L', 'Q', 'A', 'A', 'V', 'G', '0', '1'};

// The sum, in doubles, of the weights at the snapshot steps so far; the mean is rounded to float once.
struct TailAverage {
  std::vector<double> sum;
  int64_t snapshots = 0;

  void add(std::span<const float> p, int threads) {
    const auto n = static_cast<int64_t>(p.size());
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; ++i) sum[static_cast<size_t>(i)] += static_cast<double>(p[static_cast<size_t>(i)]);
    ++snapshots;
  }
  void mean_into(std::span<float> p) const {
    for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<float>(sum[i] / static_cast<double>(snapshots));
  }
  void save(const std::string& path) const {
    std::string bytes(kAverageMagic, sizeof kAverageMagic);
    const uint64_t n = sum.size();
    bytes.append(reinterpret_cast<const char*>(&snapshots), 8);
    bytes.append(reinterpret_cast<const char*>(&n), 8);
    bytes.append(reinterpret_cast<const char*>(sum.data()), n * 8);
    write_file_atomically(path, bytes);
  }
  void load(const std::string& path, int64_t expected_snapshots) {
    const MappedFile f(path);
    const uint64_t n = sum.size();
    if (f.size() != 24 + 8 * n || std::memcmp(f.data(), kAverageMagic, 8) != 0)
      throw Error(path + ": not the weight average of this model (" + std::to_string(n) + " parameters)");
    std::memcpy(&snapshots, f.data() + 8, 8);
    if (snapshots != expected_snapshots)
      throw Error(path + ": holds " + std::to_string(snapshots) + " snapshots where the checkpoint's step implies " +
                  std::to_string(expected_snapshots));
    std::memcpy(sum.data(), f.data() + 24, n * 8);
  }
};
}  // namespace

void AdamW::save(const std::string& path) const {
  std::string bytes(kOptimMagic, sizeof kOptimMagic);
  const uint64_t n = m_.size();
  bytes.append(reinterpret_cast<const char*>(&t_), 8);
  bytes.append(reinterpret_cast<const char*>(&n), 8);
  bytes.append(reinterpret_cast<const char*>(m_.data()), n * 4);
  bytes.append(reinterpret_cast<const char*>(v_.data()), n * 4);
  write_file_atomically(path, bytes);
}

void AdamW::load(const std::string& path) {
  const MappedFile f(path);
  const uint64_t n = m_.size();
  if (f.size() != 24 + 8 * n || std::memcmp(f.data(), kOptimMagic, 8) != 0)
    throw Error(path + ": not the optimizer state of this model (" + std::to_string(n) + " parameters)");
  std::memcpy(&t_, f.data() + 8, 8);
  std::memcpy(m_.data(), f.data() + 24, n * 4);
  std::memcpy(v_.data(), f.data() + 24 + n * 4, n * 4);
}

TrainReport run_training(const TrainOptions& o) {
  if (o.out.empty()) throw Error("--out is required");
  if (o.seq_len < 2 || o.batch < 1 || o.accumulation < 1 || o.steps < 1) throw Error("--seq-len, --batch, --accumulation and --steps must be positive");
  const bool averaging = o.average_from > 0;
  if (averaging && (o.average_every < 1 || o.average_from > o.steps || (o.steps - o.average_from) % o.average_every != 0))
    throw Error("--average-from must be a step of the run, --average-every positive, and the last step one of the snapshots");
  const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  const auto tokenizer = load_tokenizer(o.tokenizer);

  TrainModel model = [&] {
    if (o.resume) return TrainModel::from_gguf(o.out, 0, 0);
    if (!o.init.empty()) return TrainModel::from_gguf(o.init, o.rope_theta, o.context);
    TrainConfig c = o.shape;
    if (c.vocab == 0) c.vocab = tokenizer->vocab_size();
    c.context = o.context > 0 ? o.context : std::max(c.context, o.seq_len);
    if (o.rope_theta > 0) c.rope_theta = o.rope_theta;
    if (const auto bos = tokenizer->find("<|begin_of_text|>")) c.bos = *bos;
    if (const auto eos = tokenizer->find("<|end_of_text|>")) c.eos = *eos;
    TrainModel m(c);
    m.init_random(o.seed);
    return m;
  }();
  const TrainConfig& c = model.config();
  if (tokenizer->vocab_size() > c.vocab) throw Error(o.tokenizer + ": more tokens than the model has embeddings");
  if (o.seq_len > c.context) throw Error("--seq-len exceeds the model's context (" + std::to_string(c.context) + ")");
  const std::unique_ptr<BatchSource> rows = open_batches(o.data, *tokenizer, o.seq_len, c.bos, c.eos, o.seed);

  // Snapshot steps are average_from, average_from + average_every, ...; how many are done by `step`.
  auto snapshots_by = [&](int64_t step) { return averaging && step >= o.average_from ? (step - o.average_from) / o.average_every + 1 : 0; };
  AdamW adam(model);
  TailAverage average;
  if (averaging) average.sum.assign(model.params().size(), 0.0);
  const std::string average_path = o.out + ".average";
  if (o.resume) {
    const gguf::File checkpoint(o.out);
    adam.load(o.out + ".optim");
    const auto saved = checkpoint.get_int("longqa.train.step");
    if (!saved || *saved != adam.steps())
      throw Error(o.out + ": the checkpoint's step and its optimizer state's (" + std::to_string(adam.steps()) + ") disagree");
    const bool finished_mean = checkpoint.get_int("longqa.train.averaged_snapshots").has_value();
    if (finished_mean && adam.steps() < o.steps)
      throw Error(o.out + ": holds the mean of a finished run's snapshots, not weights to continue from (start a new run with --init)");
    if (!finished_mean && snapshots_by(adam.steps()) > 0) average.load(average_path, snapshots_by(adam.steps()));
  } else {
    fs::remove(average_path);  // a sum left by an earlier run at this path is not this run's
  }
  const std::string csv_path = o.out + ".csv";
  std::ofstream csv(csv_path, o.resume ? std::ios::app : std::ios::trunc);
  if (!csv) throw Error(csv_path + ": cannot write");
  if (!o.resume) csv << "step,lr,loss,grad_norm,tokens,seconds\n";

  Pass pass(c, o.batch, o.seq_len);
  const int64_t n = o.batch * o.seq_len, tokens_per_step = o.accumulation * n;
  std::vector<int32_t> inputs(static_cast<size_t>(n)), targets(static_cast<size_t>(n)), first_key(static_cast<size_t>(n));
  std::vector<uint8_t> mask(static_cast<size_t>(n));

  TrainReport report;
  report.data = rows->describe();
  const auto start = std::chrono::steady_clock::now();
  Progress progress("training", static_cast<uint64_t>(o.steps), /*bytes=*/false);
  const auto scale = static_cast<float>(1.0 / static_cast<double>(o.accumulation));
  std::span<float> grads = model.grads();
  for (int64_t step = adam.steps(); step < o.steps; ++step) {
    std::fill(grads.begin(), grads.end(), 0.0f);
    double loss = 0;
    for (int64_t micro = 0; micro < o.accumulation; ++micro) {
      for (int64_t row = 0; row < o.batch; ++row) {
        const auto index = static_cast<uint64_t>((step * o.accumulation + micro) * o.batch + row);
        const size_t at = static_cast<size_t>(row * o.seq_len);
        rows->fill(index, o.seq_len, &inputs[at], &targets[at], &mask[at], &first_key[at]);
      }
      loss += pass.forward(model, inputs.data(), targets.data(), mask.data(), first_key.data(), threads) * scale;
      pass.backward(model, inputs.data(), scale, threads);
    }
    // Fixed chunks summed in order: the norm (and so the clipping) is the same bits on every run.
    constexpr size_t kChunks = 64;
    std::array<double, kChunks> partial{};
#pragma omp parallel for schedule(static) num_threads(threads)
    for (size_t ch = 0; ch < kChunks; ++ch)
      for (size_t i = ch * grads.size() / kChunks; i < (ch + 1) * grads.size() / kChunks; ++i)
        partial[ch] += static_cast<double>(grads[i]) * grads[i];
    double norm2 = 0;
    for (const double p : partial) norm2 += p;
    const double norm = std::sqrt(norm2);
    if (o.clip > 0 && norm > o.clip) {
      const auto shrink = static_cast<float>(o.clip / norm);
      for (float& g : grads) g *= shrink;
    }
    const double lr = learning_rate(o, step);
    adam.step(model, o, lr, threads);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const int64_t tokens = (step + 1) * tokens_per_step;
    csv << step + 1 << ',' << lr << ',' << loss << ',' << norm << ',' << tokens << ',' << seconds << '\n';
    csv.flush();
    if (report.steps == 0) report.first_loss = loss;
    report.last_loss = loss;
    ++report.steps;
    report.seconds = seconds;
    char detail[128];
    const double per_step = seconds / static_cast<double>(report.steps);
    std::snprintf(detail, sizeof detail, "loss %.4f, %.0f tokens/s, ETA %.0f s", loss,
                  static_cast<double>(report.steps * tokens_per_step) / std::max(seconds, 1e-9),
                  per_step * static_cast<double>((o.stop_at > 0 ? std::min(o.stop_at, o.steps) : o.steps) - step - 1));
    progress.update(static_cast<uint64_t>(step + 1), detail);
    const bool stop = step + 1 == o.stop_at, last = step + 1 == o.steps;
    if (snapshots_by(step + 1) > average.snapshots) average.add(model.params(), threads);
    if (stop || last || (o.checkpoint_every > 0 && (step + 1) % o.checkpoint_every == 0)) {
      // An averaged run's product is the mean; its last weights themselves are not kept.
      const bool mean = last && averaging;
      if (mean) average.mean_into(model.params());
      model.save_gguf(o.out, o.tokenizer, fs::path(o.out).stem().string(), step + 1, mean ? average.snapshots : 0);
      adam.save(o.out + ".optim");
      if (mean) fs::remove(average_path);
      else if (average.snapshots > 0) average.save(average_path);
    }
    if (stop) break;
  }
  report.tokens_per_s = static_cast<double>(report.steps * tokens_per_step) / std::max(report.seconds, 1e-9);
  csv.close();
  plot_training_log(csv_path, o.out + ".svg");
  return report;
}

}  // namespace longqa::train
