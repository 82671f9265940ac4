// ROUGE as two public scoring scripts compute it. Pure functions; thread-safe.
//
// rouge_l_f: ROUGE-L as LongBench's metrics.py gets it: the `rouge` package (pltrdy/rouge 1.0.1),
// Rouge().get_scores([pred], [ref], avg=True)["rouge-l"]["f"] — summary-level LCS over sentences split
// at '.', words as sets (exclusive=True), the union of LCS words across reference sentences, the
// 1e-8 in the denominator, and 0.0 where the package raises (an empty side, or Python's recursion limit
// while reconstructing an LCS path of more than 991 calls, which LongBench's bare `except` turns into
// 0).
//
// rouge_lsum_f: ROUGE-Lsum as InfiniteBench's compute_scores.py gets it for longbook_sum_eng — HF
// evaluate's "rouge" (use_stemmer=False) over google-research's rouge_score: sentences are the
// non-empty lines, tokens the runs of [a-z0-9] after Python's lower(), the union LCS of each reference
// line against every predicted line, hits counted once per token occurrence, F = 2PR / (P + R).
#pragma once

#include <string_view>

namespace longqa::eval {

double rouge_l_f(std::string_view prediction, std::string_view reference);
double rouge_lsum_f(std::string_view prediction, std::string_view reference);

}  // namespace longqa::eval
