#include "eval/text_norm.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "util/utf8.h"

namespace longqa::eval {
namespace {

char32_t lower_cp(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0x80) return c;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;                        // Latin-1
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x138 && c != 0x149 && c != 0x17F) {  // Latin Extended-A
    const bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    return odd_lower ? (c % 2 == 1 ? c + 1 : c) : (c % 2 == 0 ? c + 1 : c);
  }
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;  // Greek
  if (c >= 0x410 && c <= 0x42F) return c + 32;                // Cyrillic
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

bool is_py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

}  // namespace

bool py_is_word_char(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
  if (is_py_space(c)) return false;
  if ((c >= 0x2000 && c <= 0x206F) || (c >= 0x3000 && c <= 0x303F) || (c >= 0xFF00 && c <= 0xFF0F) ||
      (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65) || c == 0xA1 ||
      c == 0xA7 || c == 0xAB || c == 0xB6 || c == 0xB7 || c == 0xBB || c == 0xBF || c == 0xD7 || c == 0xF7)
    return false;
  return true;
}

std::string py_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      out += static_cast<char>(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
      ++i;
      continue;
    }
    const size_t start = i;
    const char32_t c = utf8::next(s, i);
    const char32_t l = lower_cp(c);
    if (l == c)
      out.append(s.substr(start, i - start));
    else
      utf8::append(out, l);
  }
  return out;
}

std::vector<std::string> py_split(std::string_view s) {
  std::vector<std::string> out;
  std::string word;
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    const char32_t c = utf8::next(s, i);
    if (is_py_space(c)) {
      if (!word.empty()) out.push_back(std::move(word));
      word.clear();
    } else {
      word.append(s.substr(start, i - start));
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

std::string py_strip(std::string_view s) {
  size_t begin = std::string_view::npos, end = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    if (!is_py_space(utf8::next(s, i))) {
      if (begin == std::string_view::npos) begin = start;
      end = i;
    }
  }
  return begin == std::string_view::npos ? std::string() : std::string(s.substr(begin, end - begin));
}

std::string replace_articles(std::string_view t) {
  std::string no_articles;
  auto word_before = [&](size_t pos) {  // is the code point ending at pos a word character?
    if (pos == 0) return false;
    size_t start = pos - 1;
    while (start > 0 && (static_cast<uint8_t>(t[start]) & 0xC0) == 0x80) --start;
    size_t i = start;
    return py_is_word_char(utf8::next(t, i));
  };
  auto word_at = [&](size_t pos) {
    if (pos >= t.size()) return false;
    size_t i = pos;
    return py_is_word_char(utf8::next(t, i));
  };
  for (size_t i = 0; i < t.size();) {
    size_t len = 0;
    if (!word_before(i)) {
      for (const std::string_view art : {"a", "an", "the"})  // the regex tries the alternatives in order
        if (t.substr(i, art.size()) == art && !word_at(i + art.size())) {
          len = art.size();
          break;
        }
    }
    if (len > 0) {
      no_articles += ' ';
      i += len;
    } else {
      no_articles += t[i++];
    }
  }
  return no_articles;
}

std::string normalize_answer(std::string_view text) {
  // lower, then remove ASCII punctuation (string.punctuation)
  const std::string lowered = py_lower(text);
  std::string no_punc;
  for (char c : lowered)
    if (!(c >= 33 && c <= 126 && !std::isalnum(static_cast<unsigned char>(c)))) no_punc += c;
  const std::string no_articles = replace_articles(no_punc);
  // " ".join(text.split())
  std::string out;
  for (const std::string& w : py_split(no_articles)) out += (out.empty() ? "" : " ") + w;
  return out;
}

double token_f1(const std::vector<std::string>& pred, const std::vector<std::string>& gold) {
  std::map<std::string, int> counts;
  for (const std::string& w : gold) ++counts[w];
  int same = 0;
  for (const std::string& w : pred)
    if (auto it = counts.find(w); it != counts.end() && it->second > 0) --it->second, ++same;
  if (same == 0) return 0.0;
  const double precision = 1.0 * same / static_cast<double>(pred.size());
  const double recall = 1.0 * same / static_cast<double>(gold.size());
  return (2 * precision * recall) / (precision + recall);
}

double py_round(double x, int digits) {
  if (!std::isfinite(x)) return x;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);  // glibc: correctly rounded from the exact value
  return std::strtod(buf, nullptr);
}

std::string py_repr(double x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // Python writes 100.0, not 100
  return s;
}

}  // namespace longqa::eval
