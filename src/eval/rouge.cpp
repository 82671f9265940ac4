#include "eval/rouge.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "eval/text_norm.h"
#include "util/utf8.h"

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

namespace {

// rouge_score's tokenize without a stemmer: lower(), then the runs of [a-z0-9]. Python's lower() turns
// only two non-ASCII code points into ASCII letters: U+0130 (into "i" and a combining dot) and the
// Kelvin sign U+212A (into "k"). Tokens are interned as ids, so the LCS compares integers.
std::vector<int> rouge_score_tokens(std::string_view text, std::map<std::string, int>& ids) {
  std::vector<int> out;
  std::string token;
  auto flush = [&] {
    if (token.empty()) return;
    out.push_back(ids.emplace(token, static_cast<int>(ids.size())).first->second);
    token.clear();
  };
  for (size_t i = 0; i < text.size();) {
    const char32_t cp = utf8::next(text, i);
    if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) token += static_cast<char>(cp);
    else if (cp >= 'A' && cp <= 'Z') token += static_cast<char>(cp - 'A' + 'a');
    else if (cp == 0x130) token += 'i', flush();  // the combining dot that follows ends the token
    else if (cp == 0x212A) token += 'k';
    else flush();
  }
  flush();
  return out;
}

// The non-empty lines of text.split("\n"), tokenized.
std::vector<std::vector<int>> rouge_score_lines(std::string_view text, std::map<std::string, int>& ids) {
  std::vector<std::vector<int>> out;
  for (size_t start = 0; start <= text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) out.push_back(rouge_score_tokens(text.substr(start, end - start), ids));
    start = end + 1;
  }
  return out;
}

// lcs_ind: the reference positions of the LCS that _backtrack_norec reads out (ties step back in the
// reference).
void lcs_positions(const std::vector<int>& ref, const std::vector<int>& can, std::vector<bool>& in_union) {
  const size_t n = ref.size(), m = can.size();
  std::vector<int> table((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> int& { return table[i * (m + 1) + j]; };
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) at(i, j) = ref[i - 1] == can[j - 1] ? at(i - 1, j - 1) + 1 : std::max(at(i - 1, j), at(i, j - 1));
  for (size_t i = n, j = m; i > 0 && j > 0;) {
    if (ref[i - 1] == can[j - 1]) {
      in_union[i - 1] = true;
      --i, --j;
    } else if (at(i, j - 1) > at(i - 1, j)) {
      --j;
    } else {
      --i;
    }
  }
}

}  // namespace

double rouge_lsum_f(std::string_view prediction, std::string_view reference) {
  std::map<std::string, int> ids;
  const std::vector<std::vector<int>> ref = rouge_score_lines(reference, ids), can = rouge_score_lines(prediction, ids);
  // Occurrences of each token id on one side (collections.Counter), and their total.
  auto count = [&](const std::vector<std::vector<int>>& lines, std::vector<int>& left) {
    left.assign(ids.size(), 0);
    size_t total = 0;
    for (const auto& s : lines) {
      total += s.size();
      for (int t : s) ++left[static_cast<size_t>(t)];
    }
    return total;
  };
  std::vector<int> ref_left, can_left;
  const size_t m = count(ref, ref_left), n = count(can, can_left);
  if (m == 0 || n == 0) return 0.0;
  size_t hits = 0;
  for (const std::vector<int>& r : ref) {
    std::vector<bool> in_union(r.size(), false);
    for (const std::vector<int>& c : can) lcs_positions(r, c, in_union);
    for (size_t i = 0; i < r.size(); ++i) {
      const auto t = static_cast<size_t>(r[i]);
      if (in_union[i] && can_left[t] > 0 && ref_left[t] > 0) {
        ++hits;
        --can_left[t];
        --ref_left[t];
      }
    }
  }
  const double recall = static_cast<double>(hits) / static_cast<double>(m), precision = static_cast<double>(hits) / static_cast<double>(n);
  return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
}

}  // namespace longqa::eval
