// What the running CPU can do, detected once at first use and immutable afterwards. Kernels choose
// their fast paths from this at run time, so one binary runs on any x86-64.
#pragma once

namespace longqa::kernels {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512vl = false;
  bool avx512bw = false;
  bool avx512bf16 = false;
  bool avx512vnni = false;
  // AMX tiles with int8 / BF16 products (and AVX-512 VNNI / BF16 beside them), and the kernel has
  // granted this process the tile state.
  bool amx_int8 = false;
  bool amx_bf16 = false;
};

const CpuFeatures& cpu_features();

}  // namespace longqa::kernels
