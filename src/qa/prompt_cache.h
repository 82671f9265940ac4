// PromptCache — a Session and the tokens its KV cache holds: the unit of prompt-prefix reuse. A new
// prompt is evaluated only from where it departs from what the cache holds, so a second question
// about the same document costs only its own tokens. Owned by a Conversation or by a server slot;
// one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "engine/generator.h"
#include "engine/transformer.h"

namespace longqa::qa {

struct PromptCache {
  std::unique_ptr<Session> session;
  std::vector<int32_t> tokens;  // what session's KV cache holds, position by position
};

struct CachedGeneration {
  GenerateResult result;
  int64_t reused_tokens = 0;  // prompt tokens not evaluated again
};

// Generates from `ids` on cache.session (which must have room for ids and the answer), skipping the
// prefix the cache already holds. Afterwards the cache holds `ids`, not the answer: the next prompt
// renders the answer its own way.
CachedGeneration generate_cached(PromptCache& cache, std::span<const int32_t> ids, const GenerateOptions& options,
                                 const std::function<bool(std::string_view)>& on_text);

}  // namespace longqa::qa
