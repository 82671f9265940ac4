#include "eval/rouge.h"

#include <set>
#include <string>
#include <vector>

#include "eval/text_norm.h"

namespace longqa::eval {
namespace {

// [" ".join(s.split()) for s in text.split(".") if len(s) > 0]
std::vector<std::string> sentences(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t dot = text.find('.', start);
    const std::string_view part = text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!part.empty()) {
      std::string joined;
      for (const std::string& w : py_split(part)) joined += (joined.empty() ? "" : " ") + w;
      out.push_back(joined);
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

// sentence.split(" "): a sentence that normalised to "" is one empty word.
std::vector<std::string> words_of(const std::string& sentence) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t sp = sentence.find(' ', start);
    out.push_back(sentence.substr(start, sp == std::string::npos ? std::string::npos : sp - start));
    if (sp == std::string::npos) break;
    start = sp + 1;
  }
  return out;
}

// _recon calls Python allows under its default limit of 1000 with LongBench's eval.py call chain above
// them (module, scorer, rouge_score, get_scores, _get_avg_scores, rouge_l_summary_level, _union_lcs,
// _recon_lcs): 991, measured with the package under Python 3.11.
constexpr size_t kMaxRecursion = 991;

struct RecursionLimit {};

// _recon_lcs(x, y): the words of the LCS path the package walks (ties go left), as a set.
std::set<std::string> recon_lcs(const std::vector<std::string>& x, const std::vector<std::string>& y) {
  const size_t n = x.size(), m = y.size();
  std::vector<std::vector<int>> table(n + 1, std::vector<int>(m + 1, 0));
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j)
      table[i][j] = x[i - 1] == y[j - 1] ? table[i - 1][j - 1] + 1 : std::max(table[i - 1][j], table[i][j - 1]);
  std::set<std::string> words;
  size_t i = n, j = m, depth = 1;
  while (i > 0 && j > 0) {
    if (++depth > kMaxRecursion) throw RecursionLimit{};
    if (x[i - 1] == y[j - 1]) {
      words.insert(x[i - 1]);
      --i, --j;
    } else if (table[i - 1][j] > table[i][j - 1]) {
      --i;
    } else {
      --j;
    }
  }
  return words;
}

}  // namespace

double rouge_l_f(std::string_view prediction, std::string_view reference) {
  const std::vector<std::string> hyp = sentences(prediction), ref = sentences(reference);
  if (hyp.empty() || ref.empty()) return 0.0;  // the package raises ValueError; metrics.py returns 0.0
  std::set<std::string> ref_words, hyp_words;
  for (const std::string& s : ref)
    for (std::string& w : words_of(s)) ref_words.insert(std::move(w));
  for (const std::string& s : hyp)
    for (std::string& w : words_of(s)) hyp_words.insert(std::move(w));
  const auto m = static_cast<double>(ref_words.size()), n = static_cast<double>(hyp_words.size());
  std::set<std::string> lcs_union;
  size_t llcs = 0;
  try {
    for (const std::string& r : ref) {
      const size_t before = lcs_union.size();
      const std::vector<std::string> ref_sentence = words_of(r);
      for (const std::string& h : hyp)
        for (const std::string& w : recon_lcs(ref_sentence, words_of(h))) lcs_union.insert(w);
      llcs += lcs_union.size() - before;
    }
  } catch (const RecursionLimit&) {
    return 0.0;
  }
  const double r_lcs = static_cast<double>(llcs) / m, p_lcs = static_cast<double>(llcs) / n;
  return 2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8));
}

}  // namespace longqa::eval
