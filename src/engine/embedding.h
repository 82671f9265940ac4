// Sentence embeddings from a decoder model: the final-norm hidden states of a token sequence pooled
// into one L2-normalised vector — the last token's (E5-mistral's rule, with an EOS appended by the
// caller) or the mean over all tokens. Uses the Session it is given (rewound to empty first).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/transformer.h"

namespace longqa {

enum class Pooling { Last, Mean };
Pooling parse_pooling(const std::string& name);  // "last" or "mean"
const char* pooling_name(Pooling p);

// Writes hidden-size floats to out; `hidden` is scratch for mean pooling (one row per token).
void embed_tokens(Session& session, std::span<const int32_t> ids, Pooling pooling, std::vector<float>& out,
                  std::vector<float>& hidden);

// Scales v to unit L2 norm (a zero vector stays zero).
void l2_normalize(std::span<float> v);

}  // namespace longqa
