// Conversation — longqa's main job: questions about documents, alone or in a conversation. Each
// question is routed (router.h): the whole text goes into the prompt when it fits the long-context
// budget, otherwise retrieval picks the top-k chunks (BM25, dense or hybrid), and a summary of a text
// beyond the window is built map-reduce. The prompt is rendered with the model's chat template, and
// the KV cache of the shared prefix (system + documents) is reused: within the process across
// questions, and across processes through --kv-cache-dir. Answers carry the route, the citations and
// the token counts. Owns its Session and any temporary index; one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/generator.h"
#include "engine/model.h"
#include "engine/transformer.h"
#include "qa/chat_template.h"
#include "qa/prompt_cache.h"
#include "qa/router.h"
#include "retrieval/index.h"

namespace longqa::qa {

struct AskOptions {
  std::vector<std::string> docs;      // files to ask about (loaded with the retrieval loaders) ...
  std::optional<std::string> index;   // ... or an index directory; neither: a plain chat
  std::vector<retrieval::Document> texts;  // documents given as text (evaluation), with the files
  Mode mode = Mode::Auto;
  int64_t long_budget = 32768;        // capped at the model's context
  int64_t k = 5;                      // chunks retrieved
  int64_t chunk_tokens = 0;           // chunking of --doc files for retrieval; 0: rag_chunk_tokens (router.h)
  std::optional<ChunkOrder> chunk_order;  // the retrieved chunks' order in the prompt; none: rag_chunk_order
  std::string retriever = "auto";     // bm25, dense, hybrid; auto: hybrid when there are vectors
  std::optional<std::string> embed_model;  // --doc with retrieval: embed the chunks too
  std::optional<Template> chat_template;   // default: recognised from the model
  std::string system = kChatQaSystem;
  std::string instruction = kChatQaInstruction;
  GenerateOptions generation;
  std::optional<std::string> kv_cache_dir;  // persist the document prefix's KV cache here
  kernels::WType kv_type = kernels::WType::F16;
  int64_t max_context = 0;  // positions a session may have; 0: the model's context
  int threads = 0;
};


struct Citation {
  std::string doc;
  int page = 0;        // 0: no page
  int64_t chunk = -1;  // -1: the whole document
};

struct AskResult {
  std::string answer;
  Route route = Route::Long;
  std::string route_reason;
  std::vector<Citation> citations;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  int64_t reused_tokens = 0;  // prompt tokens whose KV cache was reused (in process or from disk)
  std::string finish_reason;
  double retrieval_seconds = 0, prefill_seconds = 0, decode_seconds = 0;
};

class Conversation {
 public:
  // history: earlier turns (user/assistant, alternating as they happened); cache: borrowed, or null
  // for one of its own.
  Conversation(const Model& model, AskOptions options, std::vector<Turn> history = {}, PromptCache* cache = nullptr);
  ~Conversation();
  Conversation(const Conversation&) = delete;
  Conversation& operator=(const Conversation&) = delete;

  struct Prompt {
    std::vector<int32_t> ids;
    size_t prefix_tokens = 0;  // the system + context part, reusable across questions
  };
  // A question routed, its context retrieved and its prompt tokenized: everything that can fail on
  // bad input (a prompt beyond the context, a bad index) fails here, before anything is generated.
  struct Prepared {
    std::string question;
    Route route = Route::Long;
    std::string reason;
    Prompt prompt;  // empty for map-reduce, which builds its prompts as it goes
    std::vector<Citation> citations;
    double retrieval_seconds = 0;
  };
  Prepared prepare(const std::string& question);
  // Generates the answer (and records the question and answer as turns). on_text streams it;
  // returning false cancels it.
  AskResult run(const Prepared& prepared, const std::function<bool(std::string_view)>& on_text = {});
  AskResult ask(const std::string& question, const std::function<bool(std::string_view)>& on_text = {}) {
    return run(prepare(question), on_text);
  }

  Template chat_template() const { return template_; }
  const std::vector<Turn>& turns() const { return turns_; }

 private:
  struct Context {
    std::string text;
    std::vector<Citation> citations;
  };
  Context whole_text();
  std::vector<retrieval::SearchResult> retrieve(const std::string& question, double& seconds);  // best first
  // The best n chunks, in `order`; citations in rank order.
  static Context joined(const std::vector<retrieval::SearchResult>& chunks, size_t n, ChunkOrder order);
  bool fits_with_answer(const Prompt& prompt) const;
  std::string retrieval_query(const std::string& question) const;
  Prompt build_prompt(const std::string& context, const std::vector<Turn>& turns) const;
  Prompt checked(Prompt prompt) const;  // raises Error unless fits_with_answer
  int64_t context_limit() const;
  int64_t doc_chunk_tokens() const;  // --chunk-tokens, or the router's size for this context
  // Prefills (reusing what it can) and generates; the session keeps the prompt, not the answer.
  AskResult answer(const Prompt& prompt, const std::function<bool(std::string_view)>& on_text);
  AskResult map_reduce(const std::string& question, const std::function<bool(std::string_view)>& on_text);
  Session& session_for(int64_t positions);
  std::string prefix_file(const std::vector<int32_t>& prefix) const;

  const Model& model_;
  AskOptions o_;
  Template template_;
  int64_t budget_;
  std::vector<retrieval::Document> docs_;
  std::unique_ptr<retrieval::Index> index_;
  std::string temp_index_dir_;  // a throwaway index over --doc files, made on the first retrieval
  std::vector<Turn> turns_;
  PromptCache own_cache_;
  PromptCache& cache_;
  std::string fingerprint_;              // model file identity, for KV prefix files
};

}  // namespace longqa::qa
