// InfiniteBench scoring, as OpenBMB's src/compute_scores.py (commit 88b3daa) computes it, task by
// task, with Python's semantics for the labels as the prediction rows hold them (a string, a number or
// a list; the script takes a list's first item for passkey, number_string, code_run and math_find, but
// not for kv_retrieval). The task score is the
// plain mean over samples, which the script prints as a fraction. longbook_sum_eng is HF evaluate's
// ROUGE-Lsum (eval/rouge.h); longbook_qa_chn (Chinese, jieba-free character F1) is not reproduced.
// Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace longqa::eval {

// One prediction's score (0..1); throws Error where the script itself would fail (a math_find label
// that is not a number).
double infinitebench_score_one(const std::string& task, const std::string& pred, const nlohmann::json& label);
// The mean over samples (sum / n, summed in order as Python's sum() does).
double infinitebench_score(const std::string& task, const std::vector<std::string>& preds, const std::vector<nlohmann::json>& labels);

}  // namespace longqa::eval
