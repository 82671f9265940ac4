// The trainer: every operation's backward against central finite differences, the whole model's
// gradient the same way, the engine computing the trainer's loss from the trainer's own checkpoint,
// a small model memorising a batch, and an interrupted run resuming to the same weights.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>

#include "data/bpe_trainer.h"
#include "data/megatron_dataset.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/transformer.h"
#include "test_util.h"
#include "train/attention.h"
#include "train/batches.h"
#include "train/ops.h"
#include "train/pass.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/random.h"

namespace longqa::train {
namespace {

using test::TempDir;

std::vector<float> random_vector(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed, 7);
  std::vector<float> v(n);
  for (float& x : v) x = scale * static_cast<float>(2 * rng.uniform() - 1);
  return v;
}

// Checks analytic[i] against (f(x + h e_i) - f(x - h e_i)) / 2h for a sample of i.
void expect_gradient(std::vector<float>& x, const std::vector<float>& analytic, const std::function<double()>& f,
                     const std::string& what, size_t samples = 40, float step = 1e-2f) {
  ASSERT_EQ(x.size(), analytic.size());
  const size_t stride = std::max<size_t>(1, x.size() / samples);
  double worst = 0;
  for (size_t i = 0; i < x.size(); i += stride) {
    const float keep = x[i], h = step * std::max(1.0f, std::abs(keep));
    x[i] = keep + h;
    const double up = f();
    x[i] = keep - h;
    const double down = f();
    x[i] = keep;
    const double numeric = (up - down) / (2.0 * h);
    const double err = std::abs(numeric - analytic[i]) / std::max(1e-2, std::abs(numeric) + std::abs(analytic[i]));
    worst = std::max(worst, err);
    EXPECT_LT(err, 2e-2) << what << "[" << i << "]: analytic " << analytic[i] << ", numeric " << numeric;
  }
  EXPECT_LT(worst, 2e-2) << what;
}

// Projects an op's output on fixed random weights: a scalar whose gradient is that op's backward of r.
double project(const std::vector<float>& y, const std::vector<float>& r) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += static_cast<double>(y[i]) * r[i];
  return s;
}

TEST(TrainOps, LinearBackwardMatchesFiniteDifferences) {
  const int64_t n = 5, in = 7, out = 6;
  auto x = random_vector(n * in, 1), w = random_vector(out * in, 2);
  const auto r = random_vector(n * out, 3);
  std::vector<float> y(n * out), dx(x.size()), dw(w.size()), scratch;
  auto f = [&] {
    linear_forward(x.data(), w.data(), y.data(), n, in, out, 2, scratch);
    return project(y, r);
  };
  linear_backward(x.data(), w.data(), r.data(), dx.data(), dw.data(), n, in, out, 2);
  expect_gradient(x, dx, f, "dx");
  expect_gradient(w, dw, f, "dw");
}

// The tiled products against their definition in doubles, at sizes with partial row and column tiles
// and a depth (601 tokens, for dw) beyond one slice; dx and dw accumulate into what they hold.
// Shapes with partial tiles only, and with whole ones, several depth slices and column panels.
class LinearProducts : public ::testing::TestWithParam<std::array<int64_t, 3>> {};
INSTANTIATE_TEST_SUITE_P(TrainOps, LinearProducts, ::testing::Values(std::array<int64_t, 3>{601, 45, 70}, std::array<int64_t, 3>{300, 130, 600}));

TEST_P(LinearProducts, MatchTheirDefinition) {
  const auto [n, in, out] = GetParam();
  const auto x = random_vector(n * in, 41), w = random_vector(out * in, 42), dy = random_vector(n * out, 43);
  std::vector<float> y(n * out, 9.0f), dx(x.size(), 0.5f), dw(w.size(), -0.5f), scratch;
  linear_forward(x.data(), w.data(), y.data(), n, in, out, 2, scratch);
  linear_backward(x.data(), w.data(), dy.data(), dx.data(), dw.data(), n, in, out, 2);
  auto sum = [](int64_t len, auto&& term) {
    double s = 0;
    for (int64_t i = 0; i < len; ++i) s += term(i);
    return s;
  };
  for (int64_t t = 0; t < n; ++t)
    for (int64_t o = 0; o < out; ++o)
      ASSERT_NEAR(y[t * out + o], sum(in, [&](int64_t i) { return double{x[t * in + i]} * w[o * in + i]; }), 1e-4) << t << "," << o;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < in; ++i)
      ASSERT_NEAR(dx[t * in + i], 0.5 + sum(out, [&](int64_t o) { return double{dy[t * out + o]} * w[o * in + i]; }), 1e-4);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i)
      ASSERT_NEAR(dw[o * in + i], -0.5 + sum(n, [&](int64_t t) { return double{dy[t * out + o]} * x[t * in + i]; }), 1e-3);
}

TEST(TrainOps, RmsNormBackwardMatchesFiniteDifferences) {
  const int64_t n = 4, d = 9;
  auto x = random_vector(n * d, 4), g = random_vector(d, 5);
  const auto r = random_vector(n * d, 6);
  std::vector<float> y(n * d), rstd(n), dx(x.size()), dg(g.size());
  auto f = [&] {
    rmsnorm_forward(x.data(), g.data(), y.data(), rstd.data(), n, d, 1e-5f, 2);
    return project(y, r);
  };
  f();
  rmsnorm_backward(x.data(), g.data(), rstd.data(), r.data(), dx.data(), dg.data(), n, d, 2);
  expect_gradient(x, dx, f, "dx");
  expect_gradient(g, dg, f, "dg");
}

// The row-wise ops split their rows across threads; the weight gradient of RMSNorm sums over rows,
// which must stay in row order whatever the split, or a run's bits would depend on the thread count
// in one more place than attention's (documented) dq sums.
TEST(TrainOps, RmsNormAndSwigluGiveTheSameBitsOnAnyThreadCount) {
  const int64_t n = 37, d = 24;
  const auto x = random_vector(n * d, 4, 3.0f), g = random_vector(d, 5), dy = random_vector(n * d, 6);
  auto run = [&](int threads) {
    std::vector<float> y(n * d), rstd(n), dx(x.size(), 0.25f), dg(g.size(), 0.5f), h(x.size()), dgate(x.size()),
        dup(x.size());
    rmsnorm_forward(x.data(), g.data(), y.data(), rstd.data(), n, d, 1e-5f, threads);
    rmsnorm_backward(x.data(), g.data(), rstd.data(), dy.data(), dx.data(), dg.data(), n, d, threads);
    swiglu_forward(x.data(), dy.data(), h.data(), n * d, threads);
    swiglu_backward(x.data(), y.data(), dy.data(), dgate.data(), dup.data(), n * d, threads);
    std::vector<float> all;
    for (const auto* v : {&y, &rstd, &dx, &dg, &h, &dgate, &dup}) all.insert(all.end(), v->begin(), v->end());
    return all;
  };
  const std::vector<float> one = run(1);
  for (const int threads : {2, 3, 5}) {
    const std::vector<float> many = run(threads);
    ASSERT_EQ(many.size(), one.size());
    EXPECT_EQ(std::memcmp(many.data(), one.data(), one.size() * sizeof(float)), 0) << threads << " threads";
  }
}

TEST(TrainOps, RopeBackwardIsTheInverseRotation) {
  const int64_t seqs = 2, t = 5, heads = 3, hd = 8;
  auto x = random_vector(seqs * t * heads * hd, 7);
  const auto r = random_vector(x.size(), 8);
  const std::vector<float> inv_freq = {1.0f, 0.3f, 0.05f, 0.01f};
  auto f = [&] {
    std::vector<float> y = x;
    rope_forward(y.data(), seqs, t, heads, hd, inv_freq.data(), 2);
    return project(y, r);
  };
  std::vector<float> dx = r;
  rope_backward(dx.data(), seqs, t, heads, hd, inv_freq.data(), 2);
  expect_gradient(x, dx, f, "dx");
  // Position 0 is not rotated.
  std::vector<float> y = x;
  rope_forward(y.data(), seqs, t, heads, hd, inv_freq.data(), 2);
  for (int64_t i = 0; i < heads * hd; ++i) EXPECT_EQ(y[i], x[i]);
}

// Random q, k, v for an attention shape; forward() returns a random projection of the output, whose
// gradient check_gradients() compares with finite differences.
struct AttentionCase {
  AttentionShape s;
  std::vector<float> q, k, v, r, out, lse, scratch;
  AttentionCase(const AttentionShape& shape, uint64_t seed)
      : s(shape),
        q(random_vector(s.seqs * s.t * s.heads * s.head_dim, seed)),
        k(random_vector(s.seqs * s.t * s.kv_heads * s.head_dim, seed + 1)),
        v(random_vector(k.size(), seed + 2)),
        r(random_vector(q.size(), seed + 3)),
        out(q.size()),
        lse(static_cast<size_t>(s.seqs * s.t * s.heads)) {}
  double forward() {
    attention_forward(q.data(), k.data(), v.data(), out.data(), lse.data(), s, 2, scratch);
    return project(out, r);
  }
  void check_gradients() {
    std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
    forward();
    attention_backward(q.data(), k.data(), v.data(), out.data(), lse.data(), r.data(), dq.data(), dk.data(), dv.data(), s, 2,
                       scratch);
    auto f = [&] { return forward(); };
    expect_gradient(q, dq, f, "dq");
    expect_gradient(k, dk, f, "dk");
    expect_gradient(v, dv, f, "dv");
    forward();
  }
};

TEST(TrainOps, GroupedCausalAttentionBackwardMatchesFiniteDifferences) {
  AttentionCase a({2, 6, 4, 2, 4}, 9);
  a.check_gradients();
  // Causality: the first position attends to itself only.
  for (int64_t d = 0; d < a.s.head_dim; ++d) EXPECT_NEAR(a.out[d], a.v[d], 1e-6);
}

TEST(TrainOps, PackedSamplesAttendOnlyWithinThemselves) {
  // Sequence 0 holds samples at positions [0, 2) and [2, 6); sequence 1 one sample.
  const std::vector<int32_t> first = {0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0};
  AttentionCase a({2, 6, 4, 2, 4, first.data()}, 19);
  a.check_gradients();
  // Position 2 starts a sample: it sees itself only, as position 0 does.
  const int64_t q_row = a.s.heads * a.s.head_dim, kv_row = a.s.kv_heads * a.s.head_dim;
  for (int64_t d = 0; d < a.s.head_dim; ++d) EXPECT_NEAR(a.out[2 * q_row + d], a.v[2 * kv_row + d], 1e-6);
  // Nothing of the first sample reaches the second: changing it leaves positions 2..5 as they were.
  const std::vector<float> before(a.out.begin() + 2 * q_row, a.out.begin() + 6 * q_row);
  for (int64_t i = 0; i < 2 * kv_row; ++i) a.v[i] += 1, a.k[i] -= 1;
  a.forward();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(a.out[2 * q_row + i], before[i]);
}

// The tiled attention against the per-pair definition (in doubles), over shapes that leave partial key
// tiles and partial row groups, with grouped heads, several sequences and packed samples; the largest
// error relative to the largest value of each output.
TEST(TrainOps, TiledAttentionMatchesTheReference) {
  for (const int64_t head_dim : {24, 64})  // 64: the register-blocked tile paths
  for (const int64_t t : {1, 5, 64, 150}) {
    std::vector<int32_t> first(static_cast<size_t>(2 * t));
    for (int64_t i = 0; i < t; ++i) {
      first[static_cast<size_t>(i)] = static_cast<int32_t>(i < t / 3 ? 0 : i < t - 3 ? t / 3 : i);  // two samples, then padding
      first[static_cast<size_t>(t + i)] = 0;
    }
    for (const int32_t* segments : {static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(first.data())}) {
      SCOPED_TRACE("head_dim " + std::to_string(head_dim) + ", t " + std::to_string(t) + (segments ? ", packed" : ""));
      AttentionCase fast({2, t, 6, 2, head_dim, segments}, 31);
      fast.forward();
      std::vector<float> out(fast.out.size()), lse(fast.lse.size());
      attention_forward_reference(fast.q.data(), fast.k.data(), fast.v.data(), out.data(), lse.data(), fast.s);
      auto close = [](const std::vector<float>& got, const std::vector<float>& want, const char* what) {
        float err = 0, peak = 1e-30f;
        for (size_t i = 0; i < want.size(); ++i) {
          err = std::max(err, std::abs(got[i] - want[i]));
          peak = std::max(peak, std::abs(want[i]));
        }
        EXPECT_LT(err / peak, 2e-6f) << what;
      };
      close(fast.out, out, "out");
      close(fast.lse, lse, "lse");
      std::vector<float> dq(fast.q.size(), 0.5f), dk(fast.k.size(), 0.5f), dv(fast.v.size(), 0.5f);  // accumulated into
      std::vector<float> rq = dq, rk = dk, rv = dv;
      attention_backward(fast.q.data(), fast.k.data(), fast.v.data(), fast.out.data(), fast.lse.data(), fast.r.data(), dq.data(),
                         dk.data(), dv.data(), fast.s, 2, fast.scratch);
      attention_backward_reference(fast.q.data(), fast.k.data(), fast.v.data(), fast.out.data(), fast.lse.data(), fast.r.data(),
                                   rq.data(), rk.data(), rv.data(), fast.s);
      close(dq, rq, "dq");
      close(dk, rk, "dk");
      close(dv, rv, "dv");
    }
  }
}

TEST(TrainOps, SwigluAndCrossEntropyBackwardsMatchFiniteDifferences) {
  const int64_t n = 30;
  auto gate = random_vector(n, 13, 3.0f), up = random_vector(n, 14);
  const auto r = random_vector(n, 15);
  std::vector<float> h(n), dgate(n), dup(n);
  auto f = [&] {
    swiglu_forward(gate.data(), up.data(), h.data(), n, 2);
    return project(h, r);
  };
  swiglu_backward(gate.data(), up.data(), r.data(), dgate.data(), dup.data(), n, 2);
  expect_gradient(gate, dgate, f, "dgate");
  expect_gradient(up, dup, f, "dup");

  const int64_t rows = 5, vocab = 11;
  auto logits = random_vector(rows * vocab, 16, 3.0f);
  const std::vector<int32_t> targets = {3, 0, 10, 7, 7};
  const std::vector<uint8_t> mask = {1, 0, 1, 1, 1};
  std::vector<float> dlogits(logits.size());
  int64_t counted = 0;
  auto loss = [&] { return cross_entropy(logits.data(), targets.data(), mask.data(), rows, vocab, nullptr, 1.0f, counted, 2); };
  const double l = cross_entropy(logits.data(), targets.data(), mask.data(), rows, vocab, dlogits.data(), 1.0f, counted, 2);
  EXPECT_EQ(counted, 4);
  EXPECT_NEAR(loss(), l, 1e-9);
  expect_gradient(logits, dlogits, loss, "dlogits");
  for (int64_t i = 0; i < vocab; ++i) EXPECT_EQ(dlogits[vocab + i], 0.0f) << "a masked position has no gradient";
}

TrainConfig tiny_config() {
  TrainConfig c;
  c.vocab = 23;
  c.hidden = 16;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.ffn = 24;
  c.context = 64;
  c.rope_theta = 100;
  return c;
}

TEST(TrainModel, WholeModelGradientMatchesFiniteDifferences) {
  for (const bool tied : {false, true}) {
    TrainConfig c = tiny_config();
    c.tied = tied;
    TrainModel m(c);
    m.init_random(3);
    for (float& p : m.params()) p *= 4;  // larger weights: gradients well above float noise
    const int64_t seqs = 2, t = 6;
    Rng rng(5, 1);
    std::vector<int32_t> inputs(seqs * t), targets(seqs * t);
    for (auto& x : inputs) x = static_cast<int32_t>(rng.below(c.vocab));
    for (auto& x : targets) x = static_cast<int32_t>(rng.below(c.vocab));
    std::vector<uint8_t> mask(seqs * t, 1);
    mask[3] = 0;
    Pass pass(c, seqs, t);
    pass.forward(m, inputs.data(), targets.data(), mask.data(), nullptr, 1);
    std::fill(m.grads().begin(), m.grads().end(), 0.0f);
    pass.backward(m, inputs.data(), 1.0f, 1);
    std::vector<float> params(m.params().begin(), m.params().end());
    const std::vector<float> grads(m.grads().begin(), m.grads().end());
    auto loss = [&] {
      std::copy(params.begin(), params.end(), m.params().begin());
      return pass.forward(m, inputs.data(), targets.data(), mask.data(), nullptr, 1);
    };
    expect_gradient(params, grads, loss, tied ? "tied model" : "model", 300, 2e-3f);
  }
}

// A small corpus a model can memorise: a random cycle of 40 distinct tokens, repeated.
std::string write_dataset(const TempDir& dir, int32_t vocab, uint64_t tokens) {
  std::vector<int32_t> cycle(static_cast<size_t>(vocab));
  for (int32_t i = 0; i < vocab; ++i) cycle[static_cast<size_t>(i)] = i;
  Rng(11, 2).shuffle(cycle);
  cycle.resize(40);
  std::vector<int32_t> ids;
  for (uint64_t i = 0; i < tokens; ++i) ids.push_back(cycle[i % cycle.size()]);
  data::IndexedDatasetWriter w(dir.file("ds"), data::optimal_dtype(vocab));
  w.append(ids);
  w.finish(64);
  return dir.file("ds");
}

const std::string& small_tokenizer(const TempDir& dir) {
  static std::string path;
  data::BpeTrainOptions o;
  o.vocab_size = 300;
  const auto r = data::train_bpe({test::bundled("haystack/GPL-3.txt")}, o);
  path = dir.file("tok.json");
  std::ofstream(path) << r.tokenizer.dump();
  return path;
}

TEST(Trainer, TheEngineComputesTheTrainersLossFromItsCheckpoint) {
  TempDir dir;
  TrainConfig c = tiny_config();
  c.vocab = 300;
  c.rope_theta = 5e5;
  c.context = 128;
  TrainModel m(c);
  m.init_random(9);
  for (float& p : m.params()) p *= 10;  // a confident model: the loss is far from log(vocab)
  m.save_gguf(dir.file("m.gguf"), small_tokenizer(dir), "test");

  const int64_t t = 40;
  Rng rng(3, 3);
  std::vector<int32_t> tokens(t + 1);
  for (auto& x : tokens) x = static_cast<int32_t>(rng.below(c.vocab));
  const std::vector<uint8_t> mask(t, 1);
  Pass pass(c, 1, t);
  const double trainer_loss = pass.forward(m, tokens.data(), tokens.data() + 1, mask.data(), nullptr, 1);

  const auto model = Model::load(dir.file("m.gguf"));
  EXPECT_EQ(model->config().rope.theta, 5e5);
  Session session(*model, {.context = 128, .batch = 16, .threads = 1});
  std::vector<float> logits;
  session.evaluate(std::span(tokens).first(t), &logits, nullptr);
  double engine_loss = 0;
  for (int64_t i = 0; i < t; ++i) {
    const float* z = logits.data() + i * c.vocab;
    const float mx = *std::max_element(z, z + c.vocab);
    double sum = 0;
    for (int64_t k = 0; k < c.vocab; ++k) sum += std::exp(static_cast<double>(z[k] - mx));
    engine_loss += std::log(sum) + mx - z[tokens[i + 1]];
  }
  engine_loss /= t;
  EXPECT_GT(trainer_loss, 1.0);
  EXPECT_NEAR(trainer_loss, engine_loss, 1e-4 * trainer_loss);
}

// A 60-step run of a small model on a learnable pattern, writing to dir/full.gguf.
TrainOptions small_run(TempDir& dir) {
  TrainOptions o;
  o.data = write_dataset(dir, 300, 8000);
  o.tokenizer = small_tokenizer(dir);
  o.shape = tiny_config();
  o.shape.vocab = 0;  // the tokenizer's
  o.shape.hidden = 32;
  o.seq_len = 32;
  o.batch = 4;
  o.accumulation = 2;
  o.steps = 60;
  o.warmup = 5;
  o.lr = 1e-2;
  o.min_lr = 1e-3;
  o.threads = 1;  // OpenMP threads spin: two 2-thread tests under ctest -j2 would oversubscribe 2 cores
  o.seed = 1;
  o.out = dir.file("full.gguf");
  return o;
}

std::vector<float> weights_of(const std::string& path) {
  TrainModel m = TrainModel::from_gguf(path, 0, 0);
  return {m.params().begin(), m.params().end()};
}

TEST(Trainer, ASmallModelLearnsAPatternAndAResumedRunEndsWithTheSameWeights) {
  TempDir dir;
  TrainOptions o = small_run(dir);
  const TrainReport full = run_training(o);
  EXPECT_EQ(full.steps, 60);
  EXPECT_LT(full.last_loss, 0.1 * full.first_loss) << "first " << full.first_loss << ", last " << full.last_loss;

  const auto csv = test::read_bytes(dir.file("full.gguf.csv"));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 61);

  // The same run stopped at step 25 (checkpointed there), then resumed: the same final weights.
  o.out = dir.file("resumed.gguf");
  o.stop_at = 25;
  EXPECT_EQ(run_training(o).steps, 25);
  o.stop_at = 0;
  o.resume = true;
  EXPECT_EQ(run_training(o).steps, 35);
  const TrainModel full_model = TrainModel::from_gguf(dir.file("full.gguf"), 0, 0);
  const TrainModel resumed_model = TrainModel::from_gguf(dir.file("resumed.gguf"), 0, 0);
  ASSERT_EQ(full_model.params().size(), resumed_model.params().size());
  EXPECT_TRUE(std::equal(full_model.params().begin(), full_model.params().end(), resumed_model.params().begin()));
  const auto resumed_csv = test::read_bytes(dir.file("resumed.gguf.csv"));
  EXPECT_EQ(std::count(resumed_csv.begin(), resumed_csv.end(), '\n'), 61);

  // The checkpoint is a model the engine runs.
  const auto model = Model::load(dir.file("full.gguf"));
  EXPECT_EQ(model->config().hidden, 32);
  EXPECT_EQ(model->tokenizer().vocab_size(), 300);
}

TEST(Trainer, TailAveragingEndsWithTheMeanOfTheSnapshotsAndResumesExactly) {
  TempDir dir;
  TrainOptions o = small_run(dir);
  o.steps = 30;
  // The snapshots by hand: a plain run stopped at steps 20, 25 and 30.
  o.out = dir.file("plain.gguf");
  std::vector<double> sum;
  for (const int64_t stop : {20, 25, 30}) {
    o.stop_at = stop;
    o.resume = stop > 20;
    run_training(o);
    const std::vector<float> w = weights_of(o.out);
    sum.resize(w.size());
    for (size_t i = 0; i < w.size(); ++i) sum[i] += w[i];
  }
  const std::vector<float> last = weights_of(o.out);
  std::vector<float> mean(sum.size());
  for (size_t i = 0; i < sum.size(); ++i) mean[i] = static_cast<float>(sum[i] / 3);

  o.resume = false;
  o.stop_at = 0;
  o.average_from = 20;
  o.average_every = 5;
  o.out = dir.file("averaged.gguf");
  EXPECT_EQ(run_training(o).steps, 30);
  const std::vector<float> averaged = weights_of(o.out);
  EXPECT_EQ(averaged, mean);
  EXPECT_NE(averaged, last);
  EXPECT_EQ(gguf::File(o.out).get_int("longqa.train.averaged_snapshots"), 3);
  EXPECT_FALSE(std::filesystem::exists(o.out + ".average"));

  // Cut between two snapshots and resumed: the same mean.
  o.out = dir.file("cut.gguf");
  o.stop_at = 22;
  run_training(o);
  EXPECT_TRUE(std::filesystem::exists(o.out + ".average"));
  o.stop_at = 0;
  o.resume = true;
  EXPECT_EQ(run_training(o).steps, 8);
  EXPECT_EQ(weights_of(o.out), mean);

  // A mean is not a state to continue from, and the last step must be a snapshot.
  o.steps = 40;
  EXPECT_THROW(run_training(o), Error);
  o.resume = false;
  o.average_from = 21;
  EXPECT_THROW(run_training(o), Error);
}

TEST(Trainer, SftSamplesTrainOnTheAnswerOnly) {
  TempDir dir;
  const std::string tokenizer_path = small_tokenizer(dir);
  const auto tk = load_tokenizer(tokenizer_path);
  const std::vector<std::string> words = {"tulip", "anchor", "violet", "marble", "copper", "willow"};
  std::string jsonl;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string fact = "The code of box " + std::to_string(i) + " is " + words[i] + ".";
    const std::string question = "What is the code of box " + std::to_string(i) + "?";
    if (i % 2 == 0)
      jsonl += nlohmann::json{{"messages", {{{"role", "system"}, {"content", fact}}, {{"role", "user"}, {"content", question}},
                                            {{"role", "assistant"}, {"content", words[i]}}}}}
                   .dump() + "\n";
    else
      jsonl += nlohmann::json{{"input", "System: " + fact + "\n\nUser: " + question + "\n\nAssistant:"}, {"output", words[i]}}.dump() + "\n";
  }
  std::ofstream(dir.file("sft.jsonl")) << jsonl;

  const int32_t bos = *tk->find("<|begin_of_text|>"), eos = *tk->find("<|end_of_text|>");
  const int64_t t = 256;  // room for two or three samples a row
  const auto rows = open_batches(dir.file("sft.jsonl"), *tk, t, bos, eos, 1);
  EXPECT_LT(rows->rows_per_epoch(), words.size());  // short samples share rows
  std::vector<int32_t> inputs(t), targets(t), first_key(t);
  std::vector<uint8_t> mask(t);
  std::multiset<std::string> answers;
  for (uint64_t row = 0; row < rows->rows_per_epoch(); ++row) {
    rows->fill(row, t, inputs.data(), targets.data(), mask.data(), first_key.data());
    for (int64_t begin = 0, end = 0; begin < t; begin = end) {
      for (end = begin + 1; end < t && first_key[end] == begin; ++end) {}
      EXPECT_EQ(first_key[begin], begin);
      if (inputs[begin] != bos) {  // padding: each position its own segment, nothing trained
        EXPECT_EQ(end, begin + 1);
        EXPECT_EQ(mask[begin], 0);
        continue;
      }
      std::vector<int32_t> trained;
      for (int64_t i = begin; i < end; ++i)
        if (mask[i]) trained.push_back(targets[i]);
      ASSERT_FALSE(trained.empty());
      EXPECT_EQ(trained.back(), eos);
      EXPECT_EQ(targets[end - 1], eos);  // the sample ends with its answer's EOS
      trained.pop_back();
      answers.insert(tk->decode(trained));
      const auto answer_at = static_cast<size_t>(std::find(mask.begin() + begin, mask.begin() + end, 1) - mask.begin());
      const std::string prompt = tk->decode(std::span(inputs).subspan(static_cast<size_t>(begin), answer_at + 1 - static_cast<size_t>(begin)));
      EXPECT_TRUE(prompt.ends_with("?\n\nAssistant:")) << prompt;
      EXPECT_TRUE(prompt.starts_with("<|begin_of_text|>System: The code of box")) << prompt;
    }
  }
  // Every sample once per epoch.
  EXPECT_EQ(answers, (std::multiset<std::string>{" tulip", " anchor", " violet", " marble", " copper", " willow"}));

  TrainOptions o;
  o.data = dir.file("sft.jsonl");
  o.tokenizer = tokenizer_path;
  o.shape = tiny_config();
  o.shape.vocab = 0;
  o.shape.hidden = 32;
  o.shape.context = t;
  o.seq_len = t;
  o.batch = 6;
  o.steps = 80;
  o.warmup = 5;
  o.lr = 1e-2;
  o.min_lr = 1e-3;
  o.threads = 1;  // OpenMP threads spin: two 2-thread tests under ctest -j2 would oversubscribe 2 cores
  o.out = dir.file("sft.gguf");
  const TrainReport r = run_training(o);
  EXPECT_LT(r.last_loss, 0.3 * r.first_loss) << r.first_loss << " -> " << r.last_loss;
  const std::vector<uint8_t> svg_bytes = test::read_bytes(dir.file("sft.gguf.svg"));
  const std::string svg(svg_bytes.begin(), svg_bytes.end());
  EXPECT_NE(svg.find("<polyline"), std::string::npos);

  std::ofstream(dir.file("bad.jsonl")) << "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n";
  try {
    open_batches(dir.file("bad.jsonl"), *tk, t, bos, eos, 1);
    ADD_FAILURE() << "a sample without an answer was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:1: not an SFT sample"), std::string::npos) << e.what();
  }
}

TEST(Recipe, TheNanoChatQaMiniatureRunsEndToEnd) {
  TempDir dir;
  const std::string recipe =
      "bash " + std::string(LONGQA_SOURCE_DIR) + "/scripts/nano-chatqa.sh " + dir.file("run") + " --mini --longqa " + LONGQA_BIN;
  const int status = std::system((recipe + " > " + dir.file("log") + " 2>&1").c_str());
  const std::vector<uint8_t> log = test::read_bytes(dir.file("log"));
  ASSERT_EQ(status, 0) << std::string(log.begin(), log.end());
  for (const char* file : {"tokenizer.json", "stage1a.gguf", "stage1.gguf", "stage2.gguf", "nano-chatqa.gguf", "nano-chatqa-short.gguf",
                           "nano-chatqa.gguf.svg", "niah-extended/heatmap.svg", "niah-before/niah.json", "report.md"})
    EXPECT_TRUE(std::filesystem::exists(dir.file("run/") + file)) << file;
  // Context extension happened: the RoPE base and the window grew between the stages.
  const auto before = Model::load(dir.file("run/stage1.gguf")), after = Model::load(dir.file("run/nano-chatqa.gguf"));
  EXPECT_EQ(before->config().rope.theta, 10000);
  EXPECT_EQ(after->config().rope.theta, 160000);
  EXPECT_GT(after->config().context_length, 512);
  const std::vector<uint8_t> report = test::read_bytes(dir.file("run/report.md"));
  EXPECT_NE(std::string(report.begin(), report.end()).find("| 3. ChatQA SFT | nano-chatqa.gguf | 3 |"), std::string::npos);

  // Run again as if stopped during the SFT (its checkpoint kept, not marked done) and before the
  // contrast: what was done is skipped, the SFT continues from its checkpoint, the contrast is trained.
  std::filesystem::remove(dir.file("run/nano-chatqa.gguf.done"));
  for (const char* file : {"nano-chatqa-short.gguf", "nano-chatqa-short.gguf.optim", "nano-chatqa-short.gguf.done"})
    std::filesystem::remove(dir.file("run/") + file);
  const int again = std::system((recipe + " > " + dir.file("log2") + " 2>&1").c_str());
  const std::vector<uint8_t> bytes = test::read_bytes(dir.file("log2"));
  const std::string log2(bytes.begin(), bytes.end());
  ASSERT_EQ(again, 0) << log2;
  for (const std::string& line : {"done before: " + dir.file("run/data"), "done before: " + dir.file("run/stage2.gguf"),
                                 "continuing " + dir.file("run/nano-chatqa.gguf")})
    EXPECT_NE(log2.find(line), std::string::npos) << line << "\n" << log2;
  EXPECT_EQ(log2.find("continuing " + dir.file("run/nano-chatqa-short.gguf")), std::string::npos) << log2;
  EXPECT_TRUE(std::filesystem::exists(dir.file("run/nano-chatqa-short.gguf.done")));
}

}  // namespace
}  // namespace longqa::train
