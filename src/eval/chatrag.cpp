#include "eval/chatrag.h"

#include <algorithm>
#include <cstdlib>
#include <map>

#include "eval/text_norm.h"
#include "util/error.h"
#include "util/utf8.h"

namespace longqa::eval {
namespace {

const char* kRefusal = "Sorry. I cannot find the answer based on the context.";

const std::vector<std::string>& unanswerable_keyphrases() {
  static const std::vector<std::string> k = {
      "cannot find", "can't find", "not able to", "unable to", "does not provide", "cannot provide", "cannot answer",
      "couldnot answer", "can't answer", "couldn't answer", "cannot be found", "cannot be determined", "do not have",
      "couldn't find", "no information", "does not mention", "doesn't mention", "not explicitly mentioned",
      "not explicitly explain", "can not find", "could not find", "does not specify", "doesn't provide",
      "doesn't specify", "there is no", "not mentioned", "don't have", "don't know", "does not include",
      "doesn't include", "does not contain", "doesn't contain", "not provided", "does not indicate",
      "doesn't indicate", "does not disclose", "doesn't disclose"};
  return k;
}

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// numpy's pairwise_sum for float64: blocks of 128 added with eight accumulators, halves recursively.
double pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double s = 0.0;  // numpy starts from -0.0; the sum of any value with -0.0 equals it with 0.0 but for -0.0 itself
    for (size_t i = 0; i < n; ++i) s += a[i];
    return s;
  }
  if (n <= 128) {
    double r[8];
    for (int k = 0; k < 8; ++k) r[k] = a[k];
    size_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (int k = 0; k < 8; ++k) r[k] += a[i + static_cast<size_t>(k)];
    double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) s += a[i];
    return s;
  }
  size_t half = n / 2;
  half -= half % 8;
  return pairwise_sum(a, half) + pairwise_sum(a + half, n - half);
}

// re.sub(r'\((\b\w+\b)\)', '', s): a parenthesised single word disappears.
std::string drop_parenthesised_words(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '(') {
      size_t j = i + 1;
      while (j < s.size()) {
        size_t k = j;
        if (!py_is_word_char(utf8::next(s, k))) break;
        j = k;
      }
      if (j > i + 1 && j < s.size() && s[j] == ')') {
        i = j + 1;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

bool py_is_float(const std::string& s, double& value) {
  // float(): surrounding whitespace allowed; Python also accepts "inf"/"nan", underscores between digits.
  const std::string t = py_strip(s);
  if (t.empty()) return false;
  char* end = nullptr;
  value = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size();
}

}  // namespace

std::string parlai_normalize(std::string_view text) {
  std::string s = py_lower(text);
  for (char& c : s)
    if (c >= 33 && c <= 126 && !std::isalnum(static_cast<unsigned char>(c))) c = ' ';  // every ASCII punctuation mark
  std::string out;
  for (const std::string& w : py_split(replace_articles(s))) out += (out.empty() ? "" : " ") + w;
  return out;
}

double chatrag_token_f1(std::string_view guess, std::string_view answer) {
  if (guess.empty()) return 0.0;
  return token_f1(py_split(parlai_normalize(guess)), py_split(parlai_normalize(answer)));
}

double numpy_mean(const std::vector<double>& values) {
  if (values.empty()) throw Error("the mean of no values");
  return pairwise_sum(values.data(), values.size()) / static_cast<double>(values.size());
}

double chatrag_f1(const std::string& dataset, const std::vector<std::string>& predictions,
                  const std::vector<std::vector<std::string>>& answers) {
  static const std::vector<std::string> kDatasets = {"doc2dial", "qrecc", "topiocqa", "inscit", "coqa", "hybridial", "sqa",
                                                     "quac", "doqa_cooking", "doqa_travel", "doqa_movies"};
  if (std::find(kDatasets.begin(), kDatasets.end(), dataset) == kDatasets.end())
    throw Error("ChatRAG dataset '" + dataset + "' is not one of doc2dial, qrecc, topiocqa, inscit, coqa, hybridial, sqa, quac, "
                "doqa_cooking, doqa_travel, doqa_movies (convfinqa is scored by accuracy)");
  if (predictions.empty()) throw Error("no predictions to score");
  if (predictions.size() > answers.size())
    throw Error(std::to_string(predictions.size()) + " predictions for " + std::to_string(answers.size()) + " gold samples");
  const bool refusals = dataset == "quac" || dataset.rfind("doqa", 0) == 0;
  std::vector<double> f1s;
  for (size_t i = 0; i < predictions.size(); ++i) {  // get_scores.py cuts the gold list to the predictions
    std::string guess = predictions[i];
    if (refusals) {
      guess = py_lower(guess);
      for (const std::string& k : unanswerable_keyphrases())
        if (contains(guess, k)) {
          guess = kRefusal;
          break;
        }
    }
    guess = replace_all(py_strip(guess), "</s>", "");
    std::vector<double> per_answer;
    for (const std::string& raw : answers[i]) {
      if (dataset == "inscit" && raw == kRefusal) continue;
      const std::string answer = py_strip(raw);
      if (answer.empty()) continue;
      per_answer.push_back(chatrag_token_f1(guess, answer));
    }
    if (!per_answer.empty()) f1s.push_back(*std::max_element(per_answer.begin(), per_answer.end()));
  }
  return numpy_mean(f1s);
}

double convfinqa_accuracy(const std::vector<std::string>& predictions, const std::vector<ConvFinQaGold>& gold) {
  if (predictions.empty()) throw Error("no predictions to score");
  if (predictions.size() > gold.size())
    throw Error(std::to_string(predictions.size()) + " predictions for " + std::to_string(gold.size()) + " gold samples");
  int matches = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const ConvFinQaGold& g = gold[i];
    std::string pred = replace_all(predictions[i], ",", "");
    pred = replace_all(replace_all(replace_all(pred, "$", ""), "million", ""), "billion", "");
    pred = drop_parenthesised_words(pred);
    std::string joined;
    for (const std::string& w : py_split(pred)) joined += (joined.empty() ? "" : " ") + w;
    pred = joined;
    double value = 0;
    const bool is_float = g.exe_answer_is_number || py_is_float(g.exe_answer, value);
    if (g.exe_answer_is_number) value = std::strtod(g.exe_answer.c_str(), nullptr);
    const bool percent = contains(g.question, "percent");
    bool ok = contains(pred, g.exe_answer) || contains(pred, g.formula);
    if (!ok && is_float)
      ok = contains(pred, py_repr(py_round(value, 3))) || contains(pred, py_repr(py_round(value, 2)));
    if (!ok && percent) {
      if (!is_float) throw Error("convfinqa: get_scores.py fails on the non-numeric answer '" + g.exe_answer + "' of sample " + std::to_string(i));
      ok = contains(pred, py_repr(value * 100)) || contains(pred, py_repr(py_round(value * 100, 1))) ||
           contains(pred, py_repr(py_round(value * 100, 2)));
    }
    if (!ok && g.exe_answer.size() >= 2 && g.exe_answer.ends_with(".0")) {
      if (!g.exe_answer_is_number) throw Error("convfinqa: get_scores.py fails on int('" + g.exe_answer + "') of sample " + std::to_string(i));
      ok = contains(pred, std::to_string(static_cast<long long>(value)));
    }
    if (!ok && contains(pred, "decrease") && is_float) {
      if (!g.exe_answer_is_number) throw Error("convfinqa: get_scores.py fails comparing the string '" + g.exe_answer + "' with 0");
      if (value < 0) ok = contains(pred, g.exe_answer_is_integer ? std::to_string(-static_cast<long long>(value)) : py_repr(-value));
    }
    matches += ok ? 1 : 0;
  }
  return static_cast<double>(matches) / static_cast<double>(predictions.size());
}

}  // namespace longqa::eval
