#include "qa/prompt_cache.h"

#include <algorithm>

#include "util/error.h"

namespace longqa::qa {

CachedGeneration generate_cached(PromptCache& cache, std::span<const int32_t> ids, const GenerateOptions& options,
                                 const std::function<bool(std::string_view)>& on_text) {
  if (!cache.session) throw Error("generate_cached: no session");
  if (ids.empty()) throw Error("the prompt is empty");
  Session& s = *cache.session;
  size_t common = 0;
  while (common < cache.tokens.size() && common < ids.size() && cache.tokens[common] == ids[common]) ++common;
  // At least one token must be evaluated to get the logits of the next one.
  const size_t start = std::min(common, ids.size() - 1);
  s.rewind(static_cast<int64_t>(start));
  cache.tokens.resize(start);
  CachedGeneration out;
  out.reused_tokens = static_cast<int64_t>(start);
  out.result = generate(s, ids.subspan(start), options, on_text);
  out.result.prompt_tokens = static_cast<int64_t>(ids.size());
  s.rewind(static_cast<int64_t>(ids.size()));
  cache.tokens.assign(ids.begin(), ids.end());
  return out;
}

}  // namespace longqa::qa
