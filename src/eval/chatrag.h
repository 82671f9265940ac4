// ChatRAG Bench scoring, as NVIDIA's evaluation/get_scores.py and metrics.py compute it: token F1
// with ParlAI-style normalisation (punctuation becomes spaces), the best F1 over a sample's answers,
// the mean over samples (numpy's pairwise sum); InsCIt's extra "Sorry..." answer dropped; QuAC and
// DoQA predictions holding an "unanswerable" key phrase replaced by the canonical refusal; and
// ConvFinQA's exact-match rules. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace longqa::eval {

std::string parlai_normalize(std::string_view s);
double chatrag_token_f1(std::string_view guess, std::string_view answer);

// numpy.mean of float64 values (pairwise summation, as numpy adds them).
double numpy_mean(const std::vector<double>& values);

// The F1 (0..1) of a dataset other than ConvFinQA; answers per sample as the gold file lists them.
double chatrag_f1(const std::string& dataset, const std::vector<std::string>& predictions,
                  const std::vector<std::vector<std::string>>& answers);

struct ConvFinQaGold {
  std::string exe_answer;        // as Python's str() prints it ("80.0", "-10", "0.25")
  bool exe_answer_is_number;     // a JSON number (Python float/int) rather than a string
  bool exe_answer_is_integer;    // a JSON integer (Python int)
  std::string formula;           // answers[0]
  std::string question;          // the last turn's content
};
// The share (0..1) of predictions that contain the executed answer or the formula, by get_scores.py's rules.
double convfinqa_accuracy(const std::vector<std::string>& predictions, const std::vector<ConvFinQaGold>& gold);

}  // namespace longqa::eval
