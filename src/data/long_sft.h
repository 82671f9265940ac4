// Long SFT data, the ChatQA-2 stage-3 way: for each NarrativeQA story, its paragraphs are assembled
// into one long document of min_tokens..max_tokens tokens (a contiguous run of the story from a random
// place), the story's ground-truth summary is inserted between two paragraphs at a random position,
// and the document is paired with the story's questions in the ChatQA prompt format, the answer as
// the target. Short SFT sets (JSONL: `messages`, optionally with a `document`/`context`, or NeMo's
// `input`/`output`) are blended in at given shares of the output's samples.
//
// NarrativeQA is read as Hugging Face distributes it (deepmind/narrativeqa exported to JSONL, plain,
// .gz or .zst): one row per question, {"document": {"id", "text", "start", "end", "summary": {"text"}},
// "question": {"text"}, "answers": [{"text"}, ...]}, the rows of one story consecutive. The story is
// cut to its `start`..`end` markers (Project Gutenberg's licence text falls outside them) and the
// first answer is the target.
//
// Output: JSONL, one sample per line, in the common chat form ({"messages": [system (the ChatQA
// system line, a blank line, the document), user (instruction + question), assistant]}) or NeMo's SFT
// form ({"input": the ChatQA prompt up to "Assistant:", "output": the answer}; NeMo's default
// "{input} {output}" template puts the space back). OUT.report.json beside it. Deterministic for a seed.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace longqa {
class Tokenizer;
}

namespace longqa::data {

enum class SftFormat { Messages, Nemo };
SftFormat parse_sft_format(const std::string& name);  // messages | nemo

struct LongSftOptions {
  uint64_t min_tokens = 32768, max_tokens = 131072;  // of a whole sample: prompt and answer
  std::vector<std::pair<std::string, double>> blend;  // short SFT file, its share of the output's samples
  SftFormat format = SftFormat::Messages;
  std::string instruction;   // prepended to the question; empty: ChatQA's default instruction
  size_t max_questions = 0;  // per story (0: all)
  uint64_t seed = 0;
  int threads = 0;
  bool strict = false;
};

// Parses "FILE:RATIO" (the ratio after the last colon).
std::pair<std::string, double> parse_blend(const std::string& text);

// Runs the job; writes `out` and `out`.report.json, returns the report.
nlohmann::json run_long_sft(const Tokenizer& tokenizer, const std::vector<std::string>& narrativeqa, const std::string& out,
                            const LongSftOptions& o);

}  // namespace longqa::data
