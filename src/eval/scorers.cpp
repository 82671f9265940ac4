#include "eval/scorers.h"

#include <algorithm>
#include <map>

#include "eval/fuzzy.h"
#include "eval/rouge.h"
#include "eval/text_norm.h"
#include "util/error.h"

namespace longqa::eval {
namespace {

bool contains(std::string_view haystack, std::string_view needle) { return haystack.find(needle) != std::string_view::npos; }

// re.findall(r"\d+", s) (ASCII digits).
std::vector<std::string> digit_runs(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    if (s[i] >= '0' && s[i] <= '9') {
      size_t j = i;
      while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
      out.emplace_back(s.substr(i, j - i));
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

double share_of(const std::vector<std::string>& numbers, std::string_view target) {
  if (numbers.empty()) return 0.0;
  double right = 0;
  for (const std::string& n : numbers) right += n == target ? 1 : 0;
  return right / static_cast<double>(numbers.size());
}

void check_sizes(size_t preds, size_t refs) {
  if (preds == 0) throw Error("no predictions to score");
  if (preds != refs) throw Error(std::to_string(preds) + " predictions for " + std::to_string(refs) + " references");
}

}  // namespace

std::string ruler_postprocess(std::string_view pred) {
  std::string s = py_strip(pred);
  for (char& c : s)
    if (static_cast<uint8_t>(c) <= 0x1F) c = '\n';
  return py_strip(s);
}

double string_match_all(const std::vector<std::string>& preds, const std::vector<std::vector<std::string>>& refs) {
  check_sizes(preds.size(), refs.size());
  double total = 0;  // Python's sum(): left to right
  for (size_t i = 0; i < preds.size(); ++i) {
    if (refs[i].empty()) throw Error("sample " + std::to_string(i) + " has no references");
    const std::string pred = py_lower(preds[i]);
    double found = 0;
    for (const std::string& r : refs[i]) found += contains(pred, py_lower(r)) ? 1.0 : 0.0;
    total += found / static_cast<double>(refs[i].size());
  }
  return py_round(total / static_cast<double>(preds.size()) * 100, 2);
}

double string_match_part(const std::vector<std::string>& preds, const std::vector<std::vector<std::string>>& refs) {
  check_sizes(preds.size(), refs.size());
  double total = 0;
  for (size_t i = 0; i < preds.size(); ++i) {
    if (refs[i].empty()) throw Error("sample " + std::to_string(i) + " has no references");
    const std::string pred = py_lower(preds[i]);
    double best = 0;
    for (const std::string& r : refs[i]) best = std::max(best, contains(pred, py_lower(r)) ? 1.0 : 0.0);
    total += best;
  }
  return py_round(total / static_cast<double>(preds.size()) * 100, 2);
}

bool ruler_uses_part(std::string_view task) { return task.substr(0, 3) == "qa_" || task == "qa"; }

double longbench_qa_f1(std::string_view prediction, std::string_view ground_truth) {
  return token_f1(py_split(normalize_answer(prediction)), py_split(normalize_answer(ground_truth)));
}

double longbench_count(std::string_view prediction, std::string_view ground_truth) {
  return share_of(digit_runs(prediction), ground_truth);
}

double longbench_retrieval(std::string_view prediction, std::string_view ground_truth) {
  // re.findall(r'Paragraph (\d+)', ground_truth)[0]: the digits after the first "Paragraph " that has some.
  std::string id;
  for (size_t at = ground_truth.find("Paragraph "); at != std::string_view::npos && id.empty();
       at = ground_truth.find("Paragraph ", at + 1)) {
    size_t end = at + 10;
    while (end < ground_truth.size() && ground_truth[end] >= '0' && ground_truth[end] <= '9') ++end;
    id = ground_truth.substr(at + 10, end - at - 10);
  }
  if (id.empty()) throw Error("retrieval ground truth '" + std::string(ground_truth) + "' names no 'Paragraph N'");
  return share_of(digit_runs(prediction), id);
}

double longbench_classification(std::string_view prediction, std::string_view ground_truth,
                                const std::vector<std::string>& all_classes) {
  std::vector<std::string> matches;
  for (const std::string& c : all_classes)
    if (contains(prediction, c)) matches.push_back(c);
  // metrics.py removes from the list it is iterating over, which skips the element after each
  // removal; the same walk here.
  for (size_t i = 0; i < matches.size(); ++i) {
    const std::string term = matches[i];
    if (contains(ground_truth, term) && term != ground_truth) {
      matches.erase(std::find(matches.begin(), matches.end(), term));  // list.remove: the first equal element
    }
  }
  if (std::find(matches.begin(), matches.end(), ground_truth) == matches.end()) return 0.0;
  return 1.0 / static_cast<double>(matches.size());
}

double longbench_score(const std::string& dataset, const std::vector<std::string>& predictions,
                       const std::vector<std::vector<std::string>>& answers, const std::vector<std::string>& all_classes) {
  static const std::map<std::string, std::string, std::less<>> kMetric = {
      {"narrativeqa", "qa_f1"}, {"qasper", "qa_f1"},        {"multifieldqa_en", "qa_f1"},
      {"hotpotqa", "qa_f1"},    {"2wikimqa", "qa_f1"},      {"musique", "qa_f1"},
      {"triviaqa", "qa_f1"},    {"trec", "classification"}, {"passage_retrieval_en", "retrieval"},
      {"passage_count", "count"}, {"gov_report", "rouge"},  {"qmsum", "rouge"},
      {"multi_news", "rouge"},  {"samsum", "rouge"},        {"lcc", "code_sim"},
      {"repobench-p", "code_sim"}};
  const auto it = kMetric.find(dataset);
  if (it == kMetric.end()) throw Error("LongBench dataset '" + dataset + "' is not one of the English datasets");
  const std::string& metric = it->second;
  check_sizes(predictions.size(), answers.size());
  double total = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    std::string prediction = predictions[i];
    if (dataset == "trec" || dataset == "triviaqa" || dataset == "samsum" || dataset == "lsht") {
      // prediction.lstrip('\n').split('\n')[0]
      const size_t b = prediction.find_first_not_of('\n');
      prediction = b == std::string::npos ? "" : prediction.substr(b);
      prediction = prediction.substr(0, prediction.find('\n'));
    }
    double score = 0;
    for (const std::string& gt : answers[i]) {
      double s = 0;
      if (metric == "qa_f1") s = longbench_qa_f1(prediction, gt);
      else if (metric == "classification") s = longbench_classification(prediction, gt, all_classes);
      else if (metric == "retrieval") s = longbench_retrieval(prediction, gt);
      else if (metric == "rouge") s = rouge_l_f(prediction, gt);
      else if (metric == "code_sim") s = longbench_code_sim(prediction, gt);
      else s = longbench_count(prediction, gt);
      score = std::max(score, s);
    }
    total += score;
  }
  return py_round(100 * total / static_cast<double>(predictions.size()), 2);
}

}  // namespace longqa::eval
