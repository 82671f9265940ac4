// Deterministic randomness: every draw is a pure function of (seed, stream, index), so what a job
// produces depends on its seed and never on thread count, batch size or resumption.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace longqa {

// splitmix64's finaliser: a well-mixed 64-bit value of x.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// FNV-1a of a string, to derive a stream from a name (a story id, a file).
inline uint64_t hash_name(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h;
}

// A small generator for one stream of draws.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream) : state_(mix64(seed ^ mix64(stream))) {}
  uint64_t next() { return mix64(state_++); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }                 // [0, n); bias negligible for our n
  template <typename T>
  void shuffle(std::vector<T>& v) {  // Fisher–Yates
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  uint64_t state_;
};

}  // namespace longqa
