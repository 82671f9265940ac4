#include "eval/infinitebench.h"

#include <algorithm>
#include <cstdlib>

#include "eval/rouge.h"
#include "eval/scorers.h"
#include "eval/text_norm.h"
#include "util/error.h"

namespace longqa::eval {
namespace {
using nlohmann::json;

std::string replace_chars(std::string s, std::string_view chars, char with = ' ') {
  for (char& c : s)
    if (chars.find(c) != std::string_view::npos) c = with;
  return s;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// first_int_match: the first run of ASCII digits.
std::string first_int(const std::string& s) {
  const size_t b = s.find_first_of("0123456789");
  if (b == std::string::npos) return "";
  const size_t e = s.find_first_not_of("0123456789", b);
  return s.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

bool is_str(const json& v, const std::string& s) { return v.is_string() && v.get<std::string>() == s; }

// `if isinstance(label, list): label = label[0]`
const json& first_if_list(const json& label) { return label.is_array() && !label.empty() ? label[0] : label; }

// `x in label` for a Python list (or str) label.
bool in_label(const json& label, const std::string& x) {
  if (label.is_string()) return label.get<std::string>().find(x) != std::string::npos;
  if (label.is_array())
    return std::any_of(label.begin(), label.end(), [&](const json& v) { return is_str(v, x); });
  return false;
}

std::vector<std::string> split_words(const std::string& s) { return py_split(s); }

// str.strip() with no argument, for ASCII whitespace as the predictions have it.
std::string strip(const std::string& s) { return py_strip(s); }

// After "prefix " in pred: "" if pred ends within it (the script returns False then).
bool after_prefix(const std::string& pred, const std::string& prefix, std::string& rest) {
  const size_t idx = pred.find(prefix);
  if (idx == std::string::npos) return false;
  rest = pred.size() < idx + prefix.size() + 1 ? std::string("\x01") : pred.substr(idx + prefix.size() + 1);
  return true;
}

double code_debug(std::string pred, const json& label) {
  if (!label.is_array() || label.size() < 2 || !label[0].is_string() || !label[1].is_string())
    throw Error("code_debug labels are [function name, option letter]");
  const std::string letter = label[1].get<std::string>(), fn = label[0].get<std::string>();
  pred = strip(pred);
  if (pred.substr(0, 2) == letter + "." || pred.substr(0, 2) == letter + ":") return 1;
  for (const char* c : {"\n", "`", "'", "\"", "-", "*", "Option", "option"}) pred = replace_all(pred, c, " ");
  while (pred.find("  ") != std::string::npos) pred = replace_all(pred, "  ", " ");
  for (const char* prefix : {"answer is:", "is:", "answer:", "correct option is:"}) {
    std::string rest;
    if (!after_prefix(pred, prefix, rest)) continue;
    if (rest == "\x01") return 0;
    return rest.rfind(letter, 0) == 0 || rest.rfind(fn, 0) == 0 ? 1 : 0;
  }
  return 0;
}

double choice(std::string pred, const json& label) {
  pred = strip(pred);
  if (pred.empty()) return 0;
  if (std::string("ABCD").find(pred[0]) != std::string::npos) return in_label(label, std::string(1, pred[0])) ? 1 : 0;
  if (in_label(label, pred)) return 1;
  pred = replace_chars(pred, "\n\"'.,?!{}");
  while (pred.find("  ") != std::string::npos) pred = replace_all(pred, "  ", " ");
  for (const char* prefix : {"answer is:", "answer:", "answer is", "option is"}) {
    std::string rest;
    if (!after_prefix(pred, prefix, rest)) continue;
    if (rest == "\x01") return 0;
    if (label.is_array())
      for (const json& s : label)
        if (s.is_string() && rest.rfind(s.get<std::string>(), 0) == 0) return 1;
    return 0;
  }
  for (const std::string& word : split_words(pred))
    if (std::string("ABCD").find(word) != std::string::npos) return in_label(label, word) ? 1 : 0;  // `word in "ABCD"`: a substring
  return 0;
}

double math_find(const std::string& pred, const json& raw_label) {
  const json& label = first_if_list(raw_label);
  if (!label.is_number()) throw Error("math_find: the script raises TypeError on a label that is not a number");
  // re.search(r"\d+\.\d+|\d+", pred): the first number, with its fraction if it has one.
  const size_t b = pred.find_first_of("0123456789");
  if (b == std::string::npos) return 0;
  size_t e = pred.find_first_not_of("0123456789", b);
  if (e == std::string::npos) e = pred.size();
  std::string num = pred.substr(b, e - b);
  if (e + 1 < pred.size() && pred[e] == '.' && std::isdigit(static_cast<unsigned char>(pred[e + 1]))) {
    size_t f = pred.find_first_not_of("0123456789", e + 1);
    num = pred.substr(b, (f == std::string::npos ? pred.size() : f) - b);
  }
  if (label.is_number_integer()) {
    if (num.find('.') != std::string::npos) throw Error("math_find: the script's int() fails on '" + num + "'");
    return std::strtoll(num.c_str(), nullptr, 10) == label.get<long long>() ? 1 : 0;
  }
  return std::strtod(num.c_str(), nullptr) == label.get<double>() ? 1 : 0;
}

double math_calc(const std::string& pred, const json& raw_label) {
  if (!raw_label.is_array() || raw_label.empty()) throw Error("math_calc labels are lists of numbers");
  const json& label = raw_label[0].is_array() ? raw_label[0] : raw_label;
  std::vector<long long> nums;
  for (size_t i = 0; i < pred.size();) {
    if (std::isdigit(static_cast<unsigned char>(pred[i]))) {
      size_t j = i;
      while (j < pred.size() && std::isdigit(static_cast<unsigned char>(pred[j]))) ++j;
      nums.push_back(std::strtoll(pred.substr(i, j - i).c_str(), nullptr, 10));
      i = j;
    } else {
      ++i;
    }
  }
  size_t count = 0;
  for (size_t i = 0; i < label.size() && i < nums.size(); ++i) {
    if (!(label[i].is_number() && label[i].get<double>() == static_cast<double>(nums[i]))) break;
    ++count;
  }
  return static_cast<double>(count) / static_cast<double>(label.size());
}

}  // namespace

double infinitebench_score_one(const std::string& task, const std::string& pred, const json& label) {
  if (task == "passkey" || task == "number_string") return is_str(first_if_list(label), first_int(pred)) ? 1 : 0;
  if (task == "kv_retrieval" || task == "kv_retrieval_prefix" || task == "kv_retrieval_both") {
    for (const std::string& w : split_words(replace_chars(pred, "\n:\"'.,?!{}")))
      if (is_str(label, w)) return 1;
    return 0;
  }
  if (task == "code_run") {
    const std::vector<std::string> words = split_words(replace_chars(strip(pred), "\n.`'\":"));
    const json& value = first_if_list(label);
    if (words.empty() || !value.is_number_integer()) return 0;
    const std::string& last = words.back();
    char* end = nullptr;
    const long long v = std::strtoll(last.c_str(), &end, 10);
    if (last.empty() || end != last.c_str() + last.size()) return 0;  // int() failed
    return v == value.get<long long>() ? 1 : 0;
  }
  if (task == "code_debug") return code_debug(pred, label);
  if (task == "math_find") return math_find(pred, label);
  if (task == "math_calc") return math_calc(pred, label);
  if (task == "longdialogue_qa_eng") {
    if (!label.is_array() || label.empty() || !label[0].is_string()) throw Error("longdialogue_qa_eng labels are lists of names");
    const std::string name = label[0].get<std::string>();
    for (std::string w : split_words(replace_chars(strip(pred), "\n:\"'.,?!{}"))) {
      std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      if (w == name) return 1;
    }
    return 0;
  }
  if (task == "longbook_choice_eng") return choice(pred, label);
  if (task == "longbook_qa_eng") {
    if (!label.is_array()) throw Error("longbook_qa_eng labels are lists of answers");
    double best = 0;
    for (const json& g : label)
      if (g.is_string()) best = std::max(best, longbench_qa_f1(pred, g.get<std::string>()));
    return best;
  }
  if (task == "longbook_sum_eng") {
    // evaluate's rouge takes a list of references as several (score_multi: the best F).
    const json references = label.is_array() ? label : json::array({label});
    if (references.empty() || !std::all_of(references.begin(), references.end(), [](const json& g) { return g.is_string(); }))
      throw Error("longbook_sum_eng labels are a summary or a non-empty list of summaries");
    double best = 0;
    for (const json& g : references) best = std::max(best, rouge_lsum_f(pred, g.get<std::string>()));
    return best;
  }
  if (task == "longbook_qa_chn") throw Error("infinitebench:longbook_qa_chn is scored with Chinese character F1, which longqa does not reproduce");
  throw Error("unknown InfiniteBench task '" + task + "'");
}

double infinitebench_score(const std::string& task, const std::vector<std::string>& preds, const std::vector<json>& labels) {
  if (preds.empty()) throw Error("no predictions to score");
  if (preds.size() != labels.size()) throw Error("predictions and labels differ in number");
  double sum = 0;
  for (size_t i = 0; i < preds.size(); ++i) sum += infinitebench_score_one(task, preds[i], labels[i]);
  return sum / static_cast<double>(preds.size());
}

}  // namespace longqa::eval
