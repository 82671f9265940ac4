#include "qa/router.h"

#include <algorithm>
#include <cctype>

#include "util/error.h"

namespace longqa::qa {

namespace {
constexpr int64_t kChatQaChunkTokens = 1200;  // ChatQA-2's retrieval chunks
}  // namespace

Mode parse_mode(const std::string& name) {
  if (name == "auto") return Mode::Auto;
  if (name == "long") return Mode::Long;
  if (name == "rag") return Mode::Rag;
  throw Error("--mode must be auto, long or rag, not '" + name + "'");
}

const char* route_name(Route r) {
  switch (r) {
    case Route::Long: return "long";
    case Route::Rag: return "rag";
    case Route::MapReduce: return "map-reduce";
  }
  return "?";
}

RouteDecision choose_route(Mode mode, int64_t prompt_tokens, int64_t answer_tokens, int64_t budget, bool summary_request) {
  const int64_t need = prompt_tokens + answer_tokens;
  const std::string sizes = std::to_string(prompt_tokens) + " prompt + " + std::to_string(answer_tokens) +
                            " answer tokens against a budget of " + std::to_string(budget);
  switch (mode) {
    case Mode::Long:
      if (need > budget)
        throw Error("--mode long: " + sizes + " do not fit; use --mode auto or rag, or raise --long-budget");
      return {Route::Long, "long context requested; " + sizes};
    case Mode::Rag:
      return {Route::Rag, "retrieval requested"};
    case Mode::Auto:
      if (need <= budget) return {Route::Long, "the whole text fits: " + sizes};
      if (summary_request)
        return {Route::MapReduce, "a summary of a text beyond the window: summarised in window-sized parts, then combined; " + sizes};
      return {Route::Rag, "the text does not fit: " + sizes + "; retrieving the top chunks"};
  }
  return {Route::Rag, ""};
}

int64_t rag_chunk_tokens(int64_t context) { return std::clamp<int64_t>(context / 8, 1, kChatQaChunkTokens); }

ChunkOrder parse_chunk_order(const std::string& name) {
  if (name == "best-first") return ChunkOrder::BestFirst;
  if (name == "best-last") return ChunkOrder::BestLast;
  throw Error("--chunk-order must be best-first or best-last, not '" + name + "'");
}

const char* chunk_order_name(ChunkOrder order) { return order == ChunkOrder::BestFirst ? "best-first" : "best-last"; }

ChunkOrder rag_chunk_order(int64_t context) {
  return rag_chunk_tokens(context) < kChatQaChunkTokens ? ChunkOrder::BestLast : ChunkOrder::BestFirst;
}

bool is_summary_request(const std::string& question) {
  std::string q = question;
  std::transform(q.begin(), q.end(), q.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* cue : {"summar", "overview", "tl;dr", "tldr", "main points", "key points", "gist", "outline"})
    if (q.find(cue) != std::string::npos) return true;
  return false;
}

}  // namespace longqa::qa
