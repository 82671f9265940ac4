// RULER's synthetic tasks (Hsieh et al., 2024), generated at any length in the model's tokens with
// RULER's templates: niah_single_1..3, niah_multikey_1..3, niah_multivalue, niah_multiquery, vt
// (variable tracking), cwe (common words) and fwe (frequent words). The random draws are longqa's
// own (seeded per sample), so samples are not RULER's byte for byte; the task shapes, templates,
// answer lists and scoring (scorers.h) are. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tokenizer.h"

namespace longqa::eval {

struct RulerSample {
  int64_t index = 0;
  std::string before, context, after;  // the prompt is before + context + after
  std::string question;                // the question alone (what a chat turn or a retriever gets)
  std::vector<std::string> outputs;    // the references string_match_* looks for
  int64_t tokens = 0;                  // tokens of the whole prompt
};

std::vector<std::string> ruler_tasks();  // the names this generator knows
int64_t ruler_tokens_to_generate(const std::string& task);

// A sample whose prompt is at most `max_tokens` - the task's answer budget, as long as that allows.
// essay: text for the "essay" haystack (the bundled haystack).
RulerSample make_ruler_sample(const std::string& task, int64_t index, int64_t max_tokens, const Tokenizer& tokenizer,
                              const std::string& essay);

}  // namespace longqa::eval
