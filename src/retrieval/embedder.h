// Embedder — chunk and query vectors for dense retrieval, E5-mistral style by default: the model's
// BOS, the text, an appended EOS, last-token pooling, L2-normalised; queries are prefixed
// "Instruct: {task}\nQuery: " and documents are embedded bare (Wang et al., 2024). Mean pooling
// (no instruction, no EOS) is the alternative. Owns its model and one Session; use from one thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/embedding.h"
#include "engine/model.h"
#include "engine/transformer.h"

namespace longqa::retrieval {

struct EmbedderSpec {
  std::string model;  // GGUF file or HF directory
  Pooling pooling = Pooling::Last;
  std::string query_instruction = "Given a question, retrieve passages that answer the question";
  int64_t max_tokens = 4096;  // E5-mistral's limit; a longer text is an error, never truncated
};

class Embedder {
 public:
  Embedder(EmbedderSpec spec, int threads);
  ~Embedder();

  int dim() const;
  const EmbedderSpec& spec() const { return spec_; }
  const Tokenizer& tokenizer() const { return model_->tokenizer(); }

  std::vector<float> document(std::string_view text);
  std::vector<float> query(std::string_view text);

 private:
  std::vector<float> embed(std::string_view text);

  EmbedderSpec spec_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Session> session_;
  std::vector<int32_t> ids_;
  std::vector<float> hidden_;
};

}  // namespace longqa::retrieval
