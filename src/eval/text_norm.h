// The text normalisation the public scoring scripts apply, in C++: Python's str.lower(), str.split()
// (Unicode whitespace), \b word boundaries, and SQuAD's normalize_answer (lower, drop ASCII
// punctuation, drop the articles a/an/the, collapse whitespace). Pure functions; thread-safe.
//
// Approximations, stated: lower() maps ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic capitals
// (the scripts' benchmarks are English); \w counts every non-ASCII code point as a word character
// except the General Punctuation, CJK punctuation and fullwidth ASCII punctuation blocks.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace longqa::eval {

std::string py_lower(std::string_view s);
std::vector<std::string> py_split(std::string_view s);  // str.split() with no argument
std::string py_strip(std::string_view s);               // str.strip() with no argument
bool py_is_word_char(char32_t cp);                      // re's \w for str patterns

// re.sub(r"\b(a|an|the)\b", " ", s): the whole words a, an and the become spaces.
std::string replace_articles(std::string_view s);
// SQuAD / LongBench normalize_answer.
std::string normalize_answer(std::string_view s);

// The scripts' token F1: Counter(pred) & Counter(gold) overlaps, 2PR / (P + R), 0 without overlap.
double token_f1(const std::vector<std::string>& pred, const std::vector<std::string>& gold);

// Python's round(x, digits) (correctly rounded, ties to even on the exact binary value).
double py_round(double x, int digits);
// Python's repr of a float: the shortest string that reads back to the same double ("66.67", "100.0").
std::string py_repr(double x);

}  // namespace longqa::eval
