#include "retrieval/embedder.h"

#include "util/error.h"

namespace longqa::retrieval {

// Mapped, not read: embedding is prefill, bound by compute rather than by streaming weights, and the
// embedder is often the chat model itself, whose mapped pages then cost no second copy.
Embedder::Embedder(EmbedderSpec spec, int threads)
    : spec_(std::move(spec)), model_(Model::load(spec_.model, {.rope = {}, .weights = FileResidency::Mapped})) {
  const ModelConfig& c = model_->config();
  if (spec_.pooling == Pooling::Last && c.eos_ids.empty())
    throw Error(spec_.model + ": last-token pooling needs an EOS token, and the model defines none");
  const int64_t context = std::min<int64_t>(spec_.max_tokens + 2, c.context_length);
  session_ = std::make_unique<Session>(*model_, SessionOptions{.context = context, .batch = 512, .threads = threads});
}

Embedder::~Embedder() = default;

int Embedder::dim() const { return static_cast<int>(model_->config().hidden); }

std::vector<float> Embedder::embed(std::string_view text) {
  const ModelConfig& c = model_->config();
  ids_.clear();
  if (c.bos_id >= 0) ids_.push_back(c.bos_id);
  const std::vector<int32_t> body = model_->tokenizer().encode(text, /*parse_special=*/false);
  ids_.insert(ids_.end(), body.begin(), body.end());
  if (static_cast<int64_t>(body.size()) > spec_.max_tokens)
    throw Error("embedding: a text of " + std::to_string(body.size()) + " tokens exceeds the embedder's limit of " +
                std::to_string(spec_.max_tokens) + " (use smaller chunks)");
  if (spec_.pooling == Pooling::Last) ids_.push_back(c.eos_ids[0]);
  std::vector<float> out;
  embed_tokens(*session_, ids_, spec_.pooling, out, hidden_);
  return out;
}

std::vector<float> Embedder::document(std::string_view text) { return embed(text); }

std::vector<float> Embedder::query(std::string_view text) {
  if (spec_.pooling == Pooling::Mean || spec_.query_instruction.empty()) return embed(text);
  return embed("Instruct: " + spec_.query_instruction + "\nQuery: " + std::string(text));
}

}  // namespace longqa::retrieval
