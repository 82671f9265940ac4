// Reciprocal rank fusion (Cormack et al., 2009): score(d) = sum over lists of weight / (k + rank),
// rank 1-based, k = 60 by default. Merges BM25 and dense result lists for hybrid retrieval.
#pragma once

#include <vector>

#include "retrieval/store.h"

namespace longqa::retrieval {

struct RankedList {
  std::vector<Scored> results;  // best first
  double weight = 1.0;
};

// The top `k` ids by fused score, best first (ties: lower id first).
std::vector<Scored> reciprocal_rank_fusion(const std::vector<RankedList>& lists, int64_t k, double rrf_k = 60.0);

}  // namespace longqa::retrieval
