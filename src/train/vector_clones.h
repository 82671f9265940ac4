// The trainer's inner loops are plain loops over contiguous floats; LONGQA_VECTOR_CLONES compiles a
// function for AVX-512, AVX2 and the baseline, and the loader picks the widest the CPU has, so one
// binary runs on any x86-64. v16 is sixteen floats (one AVX-512 register, two AVX2 ones) for the
// loops that hold their sums in registers; its helpers are always inlined, so that they take the
// instruction set of the clone that calls them.
#pragma once

#include <cstring>

#define LONGQA_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

namespace longqa::train {

using v16 = float __attribute__((vector_size(64)));

[[gnu::always_inline]] inline v16 load16(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

[[gnu::always_inline]] inline void store16(float* p, v16 v) { std::memcpy(p, &v, sizeof v); }

[[gnu::always_inline]] inline void add16(float* p, v16 v) {
  store16(p, v + load16(p));
}

}  // namespace longqa::train
