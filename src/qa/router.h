// The router — ChatQA-2's finding made a feature: below ~32K tokens, feeding the whole text beats
// retrieval; beyond the window, retrieval (top-k chunks) beats stuffing it. Summaries cannot be served
// by retrieval: beyond the window they are built map-reduce. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace longqa::qa {

enum class Mode { Auto, Long, Rag };
Mode parse_mode(const std::string& name);  // auto, long, rag

enum class Route { Long, Rag, MapReduce };
const char* route_name(Route r);  // "long", "rag", "map-reduce"

struct RouteDecision {
  Route route;
  std::string reason;  // one line for --verbose and the JSON answer
};

// prompt_tokens: the whole prompt with every document in it; budget: the long-context budget, already
// capped at the model's context.
RouteDecision choose_route(Mode mode, int64_t prompt_tokens, int64_t answer_tokens, int64_t budget,
                           bool summary_request);

// The chunk size for retrieval from a model's context of `context` positions: ChatQA-2's 1,200 tokens,
// or an eighth of a smaller window, so that the top 5 chunks take under two thirds of it and leave the
// question and the answer room (at 4,096 positions the nano-ChatQA model finds 67 of 80 planted facts
// with 512-token chunks, 53 with 1,200: README, "The nano-ChatQA recipe").
int64_t rag_chunk_tokens(int64_t context);

// Where the best of the retrieved chunks goes in the prompt. ChatQA's own evaluation code joins them
// in rank order, the best first; a model whose window the chunks fill reads the best one more surely
// nearest the question (the nano-ChatQA model in rag mode, 5 x 80 questions: 357 planted facts found
// best first, 378 best last; README, "The nano-ChatQA recipe"; Liu et al., "Lost in the Middle", 2023).
enum class ChunkOrder { BestFirst, BestLast };
ChunkOrder parse_chunk_order(const std::string& name);  // best-first, best-last
const char* chunk_order_name(ChunkOrder order);
// The paper's order for a window that rag_chunk_tokens gives ChatQA-2's chunks (9,600 positions and
// more); best last in a smaller one, where those chunks were cut down to fit.
ChunkOrder rag_chunk_order(int64_t context);

// Whether a question asks for a summary of the whole text (which top-k chunks cannot give).
bool is_summary_request(const std::string& question);

}  // namespace longqa::qa
