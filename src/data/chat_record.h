// Chat samples as SFT sets give them: `messages` (roles system/user/assistant; optionally a `document`
// or `context` field, and ChatQA's `answers` holding the target after a final user turn) or NeMo's
// `input`/`output`. One parser for `data long-sft`'s blends and the trainer's SFT rows, so both accept
// the same records. Pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qa/chat_template.h"

namespace longqa::data {

struct ChatRecord {
  bool prompt_given = false;    // NeMo form: `input` is the finished prompt, `output` the answer
  std::string input, output;    // NeMo form
  std::string system, context;  // messages form
  std::vector<qa::Turn> turns;  // messages form; ends with the assistant's answer
};

// Fills `out` from one JSONL record; returns why the record is not a usable sample, "" when it is.
std::string parse_chat_record(const nlohmann::json& rec, ChatRecord& out);

// The ChatQA prompt up to "Assistant:" (no BOS) and the answer: NeMo's input and output as they are,
// or the messages rendered with the ChatQA template.
std::pair<std::string, std::string> chatqa_prompt(const ChatRecord& r);

}  // namespace longqa::data
