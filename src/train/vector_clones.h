// The trainer's inner loops are plain loops over contiguous floats; this attribute compiles a function
// for AVX-512, AVX2 and the baseline, and the loader picks the widest the CPU has, so one binary runs
// on any x86-64.
#pragma once

#define LONGQA_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
