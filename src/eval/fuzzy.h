// fuzzywuzzy's fuzz.ratio as LongBench runs it (fuzzywuzzy 0.18 without python-Levenshtein, so
// difflib.SequenceMatcher with its autojunk heuristic, on code points), and LongBench's
// code_sim_score built on it. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace longqa::eval {

// difflib.SequenceMatcher(None, a, b).ratio(): 2 * matches / (len(a) + len(b)).
double sequence_matcher_ratio(const std::u32string& a, const std::u32string& b);
// fuzz.ratio: 100 for equal strings, 0 if either is empty, else int(round(100 * ratio)).
int fuzz_ratio(std::string_view a, std::string_view b);
// LongBench metrics.py code_sim_score: the first line of the prediction (after leading newlines) with
// no '`', '#' or '//', compared with fuzz.ratio / 100.
double longbench_code_sim(std::string_view prediction, std::string_view ground_truth);

}  // namespace longqa::eval
