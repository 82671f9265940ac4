#include "kernels/cpu/cpu_features.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace longqa::kernels {

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.f16c = __builtin_cpu_supports("f16c");
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
    f.avx512vnni = __builtin_cpu_supports("avx512vnni");
    unsigned a = 0, b = 0, c = 0, d = 0;
    // CPUID.7.0:EDX bit 24 AMX-TILE, 25 AMX-INT8, 22 AMX-BF16. Linux hands out the 8 KiB tile state
    // only on request (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
    const bool tiles = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 1) && f.avx512f &&
                       syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    f.amx_int8 = tiles && (d >> 25 & 1) && f.avx512vnni;
    f.amx_bf16 = tiles && (d >> 22 & 1) && f.avx512bf16;
#endif
    return f;
  }();
  return features;
}

}  // namespace longqa::kernels
