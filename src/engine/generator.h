// generate() — the decode loop: prefill a prompt, then sample, evaluate and stream text until a stop
// token, a stop string or the token budget. Text is streamed in whole UTF-8 characters, and text that
// might begin a stop string is held back until it is known not to.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampler.h"
#include "engine/transformer.h"

namespace longqa {

struct GenerateOptions {
  int64_t max_tokens = 256;
  SamplerOptions sampling;
  std::vector<std::string> stop;  // stop strings; not included in the output
  bool stop_at_eos = true;        // stop on the model's EOS / end-of-turn tokens
};

struct GenerateResult {
  std::string text;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  std::string finish_reason;  // "stop" or "length"
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// on_text receives each new piece of text; returning false cancels generation.
GenerateResult generate(Session& session, std::span<const int32_t> prompt, const GenerateOptions& options,
                        const std::function<bool(std::string_view)>& on_text = {});

}  // namespace longqa
