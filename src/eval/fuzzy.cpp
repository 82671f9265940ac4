#include "eval/fuzzy.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "util/utf8.h"

namespace longqa::eval {
namespace {

std::u32string code_points(std::string_view s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) out += utf8::next(s, i);
  return out;
}

struct Matcher {
  const std::u32string& a;
  const std::u32string& b;
  std::unordered_map<char32_t, std::vector<size_t>> b2j;

  Matcher(const std::u32string& a_, const std::u32string& b_) : a(a_), b(b_) {
    for (size_t j = 0; j < b.size(); ++j) b2j[b[j]].push_back(j);
    // autojunk: in a b of 200 or more, elements more frequent than 1% + 1 are "popular" and dropped.
    if (b.size() >= 200) {
      const size_t ntest = b.size() / 100 + 1;
      for (auto it = b2j.begin(); it != b2j.end();) it = it->second.size() > ntest ? b2j.erase(it) : std::next(it);
    }
  }

  // find_longest_match (no junk: the popular elements are not junk, so the extension loops take them).
  std::tuple<size_t, size_t, size_t> longest(size_t alo, size_t ahi, size_t blo, size_t bhi) const {
    size_t besti = alo, bestj = blo, bestsize = 0;
    std::unordered_map<size_t, size_t> j2len, next;
    for (size_t i = alo; i < ahi; ++i) {
      next.clear();
      const auto found = b2j.find(a[i]);
      if (found != b2j.end()) {
        for (size_t j : found->second) {
          if (j < blo) continue;
          if (j >= bhi) break;
          const auto prev = j > 0 ? j2len.find(j - 1) : j2len.end();
          const size_t k = next[j] = (prev == j2len.end() ? 0 : prev->second) + 1;
          if (k > bestsize) besti = i - k + 1, bestj = j - k + 1, bestsize = k;
        }
      }
      std::swap(j2len, next);
    }
    while (besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1]) --besti, --bestj, ++bestsize;
    while (besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] == b[bestj + bestsize]) ++bestsize;
    return {besti, bestj, bestsize};
  }

  size_t matches() const {
    size_t total = 0;
    std::vector<std::tuple<size_t, size_t, size_t, size_t>> queue = {{0, a.size(), 0, b.size()}};
    while (!queue.empty()) {
      const auto [alo, ahi, blo, bhi] = queue.back();
      queue.pop_back();
      const auto [i, j, k] = longest(alo, ahi, blo, bhi);
      if (k == 0) continue;
      total += k;
      if (alo < i && blo < j) queue.emplace_back(alo, i, blo, j);
      if (i + k < ahi && j + k < bhi) queue.emplace_back(i + k, ahi, j + k, bhi);
    }
    return total;
  }
};

}  // namespace

double sequence_matcher_ratio(const std::u32string& a, const std::u32string& b) {
  const size_t length = a.size() + b.size();
  if (length == 0) return 1.0;
  return 2.0 * static_cast<double>(Matcher(a, b).matches()) / static_cast<double>(length);
}

int fuzz_ratio(std::string_view a, std::string_view b) {
  if (a == b) return 100;
  if (a.empty() || b.empty()) return 0;
  return static_cast<int>(std::nearbyint(100 * sequence_matcher_ratio(code_points(a), code_points(b))));  // round half to even
}

double longbench_code_sim(std::string_view prediction, std::string_view ground_truth) {
  const size_t start = prediction.find_first_not_of('\n');
  std::string_view rest = start == std::string_view::npos ? std::string_view() : prediction.substr(start);
  std::string_view chosen;
  while (true) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    if (line.find('`') == std::string_view::npos && line.find('#') == std::string_view::npos &&
        line.find("//") == std::string_view::npos) {
      chosen = line;
      break;
    }
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  return fuzz_ratio(chosen, ground_truth) / 100.0;
}

}  // namespace longqa::eval
