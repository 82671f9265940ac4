// Scorers that reproduce the public benchmarks' scoring code, including its quirks: the function and
// file each follows is named beside it. Scores are percentages rounded as the scripts round them
// (Python's round(x, 2)). Pure functions; thread-safe. Bad input raises longqa::Error.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace longqa::eval {

// RULER scripts/eval/evaluate.py postprocess_pred: strip, control characters to newlines, strip.
std::string ruler_postprocess(std::string_view pred);
// RULER scripts/eval/synthetic/constants.py: the mean over samples of the share (all) or the best
// (part) of references found case-insensitively in the prediction, x100, round 2.
double string_match_all(const std::vector<std::string>& preds, const std::vector<std::vector<std::string>>& refs);
double string_match_part(const std::vector<std::string>& preds, const std::vector<std::vector<std::string>>& refs);
// Which of the two a RULER task uses (qa_* : part; every other task: all).
bool ruler_uses_part(std::string_view task);

// LongBench (v1) LongBench/metrics.py, per prediction and ground truth.
double longbench_qa_f1(std::string_view prediction, std::string_view ground_truth);
double longbench_count(std::string_view prediction, std::string_view ground_truth);
double longbench_retrieval(std::string_view prediction, std::string_view ground_truth);
double longbench_classification(std::string_view prediction, std::string_view ground_truth,
                                const std::vector<std::string>& all_classes);
// LongBench/eval.py scorer(): the first-line rule for trec/triviaqa/samsum/lsht, the best score over
// the ground truths, and - as eval.py does - the all_classes of the file's last row for every row.
// ROUGE-L as rouge.h computes it, code similarity as fuzzy.h does.
double longbench_score(const std::string& dataset, const std::vector<std::string>& predictions,
                       const std::vector<std::vector<std::string>>& answers, const std::vector<std::string>& all_classes);

}  // namespace longqa::eval
