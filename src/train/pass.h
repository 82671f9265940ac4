// Pass — one forward and backward through a TrainModel for a micro-batch of `seqs` sequences of `t`
// tokens: the activations the backward needs are kept in buffers allocated once, at construction, and
// reused by every step (nothing allocates inside the training loop). Loss positions are chosen by a
// mask (SFT trains on the answer only). One per training thread of control; not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "train/train_model.h"

namespace longqa::train {

class Pass {
 public:
  Pass(const TrainConfig& c, int64_t seqs, int64_t t);

  // The mean cross-entropy of predicting targets[i] at input position i, over positions with mask[i]
  // set. inputs, targets, mask, first_key: seqs * t each; first_key (may be null) as AttentionShape's.
  double forward(const TrainModel& m, const int32_t* inputs, const int32_t* targets, const uint8_t* mask, const int32_t* first_key,
                 int threads);
  // Adds scale * d(loss)/d(parameters) to m.grads(); call after forward() on the same batch.
  void backward(TrainModel& m, const int32_t* inputs, float scale, int threads);

  int64_t counted() const { return counted_; }  // loss positions in the last forward

 private:
  struct Layer {
    std::vector<float> x, xn1, rstd1, q, k, v, att, lse, x2, xn2, rstd2, gate, up, h;
  };
  TrainConfig c_;
  int64_t seqs_, t_, n_;
  std::vector<float> inv_freq_;
  std::vector<Layer> layers_;
  std::vector<float> x_final_, xn_final_, rstd_final_, logits_;
  // Backward scratch.
  std::vector<float> dx_, dx2_, dxn_, dq_, dk_, dv_, datt_, dh_, dgate_, dup_;
  std::vector<float> scratch_;  // the ops' working space, grown by the first step
  const int32_t* targets_ = nullptr;
  const uint8_t* mask_ = nullptr;
  const int32_t* first_key_ = nullptr;
  int64_t counted_ = 0;
};

}  // namespace longqa::train
