#include "engine/embedding.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace longqa {

Pooling parse_pooling(const std::string& name) {
  if (name == "last") return Pooling::Last;
  if (name == "mean") return Pooling::Mean;
  throw Error("pooling must be 'last' or 'mean', not '" + name + "'");
}

const char* pooling_name(Pooling p) { return p == Pooling::Last ? "last" : "mean"; }

void l2_normalize(std::span<float> v) {
  double norm = 0;
  for (float x : v) norm += static_cast<double>(x) * x;
  norm = std::sqrt(norm);
  for (float& x : v) x = static_cast<float>(x / std::max(norm, 1e-12));
}

void embed_tokens(Session& session, std::span<const int32_t> ids, Pooling pooling, std::vector<float>& out,
                  std::vector<float>& hidden) {
  if (ids.empty()) throw Error("embedding: no tokens");
  if (static_cast<int64_t>(ids.size()) > session.capacity())
    throw Error("embedding: " + std::to_string(ids.size()) + " tokens exceed the embedder's context of " +
                std::to_string(session.capacity()));
  session.rewind(0);
  const size_t h = static_cast<size_t>(session.model().config().hidden);
  out.assign(h, 0.0f);
  if (pooling == Pooling::Last) {
    session.evaluate(ids, nullptr, nullptr);
    const auto last = session.last_hidden();
    std::copy(last.begin(), last.end(), out.begin());
  } else {
    hidden.clear();
    session.evaluate(ids, nullptr, &hidden);
    for (size_t t = 0; t < ids.size(); ++t)
      for (size_t i = 0; i < h; ++i) out[i] += hidden[t * h + i] / static_cast<float>(ids.size());
  }
  l2_normalize(out);
}

}  // namespace longqa
