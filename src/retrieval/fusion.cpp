#include "retrieval/fusion.h"

#include <algorithm>
#include <unordered_map>

namespace longqa::retrieval {

std::vector<Scored> reciprocal_rank_fusion(const std::vector<RankedList>& lists, int64_t k, double rrf_k) {
  std::unordered_map<int64_t, double> fused;
  for (const RankedList& list : lists)
    for (size_t rank = 0; rank < list.results.size(); ++rank)
      fused[list.results[rank].id] += list.weight / (rrf_k + static_cast<double>(rank + 1));
  std::vector<Scored> out;
  out.reserve(fused.size());
  for (const auto& [id, score] : fused) out.push_back({id, score});
  std::sort(out.begin(), out.end(), [](const Scored& a, const Scored& b) { return a.score != b.score ? a.score > b.score : a.id < b.id; });
  if (static_cast<int64_t>(out.size()) > k) out.resize(static_cast<size_t>(std::max<int64_t>(k, 0)));
  return out;
}

}  // namespace longqa::retrieval
