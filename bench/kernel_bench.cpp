// Dot-product kernels streaming weight rows: GB/s of weights read and ns per 32 elements, with the
// rows resident in cache (64 rows, reused) and streamed from memory (65536 rows), one thread. The gap
// between the two is what memory latency and prefetching cost. The rows sit on 2 MiB pages where the
// kernel gives them, as the engine's weights do (see MappedFile). Q4_0x8 is Q4_0 with its rows
// interleaved for the decode kernel that takes eight rows at once (the layout the loader makes).
// usage: longqa-bench-kernels
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "kernels/cpu/dot.h"
#include "kernels/cpu/matmul.h"

using namespace longqa::kernels;

int main() {
  constexpr size_t kHugePage = size_t{2} << 20;
  const int64_t cols = 2048;
  for (WType t :
       {WType::F16, WType::BF16, WType::Q8_0, WType::Q4_0, WType::Q4_0x8, WType::Q4_K, WType::Q5_K, WType::Q6_K}) {
    const WType file_type = t == WType::Q4_0x8 ? WType::Q4_0 : t;
    for (int64_t rows : {int64_t{64}, int64_t{65536}}) {
      std::mt19937 rng(1);
      std::normal_distribution<float> normal;
      std::vector<float> x(cols), row(cols);
      for (float& v : x) v = normal(rng);
      const size_t stride = row_bytes(t, cols);
      const size_t bytes = (stride * static_cast<size_t>(rows) + kHugePage - 1) / kHugePage * kHugePage;
      const std::unique_ptr<uint8_t, decltype(&std::free)> w(static_cast<uint8_t*>(std::aligned_alloc(kHugePage, bytes)), &std::free);
      madvise(w.get(), bytes, MADV_HUGEPAGE);
      for (int64_t r = 0; r < rows; ++r) {
        for (float& v : row) v = normal(rng);
        from_f32(file_type, row.data(), w.get() + static_cast<size_t>(r) * stride, cols);
      }
      if (t == WType::Q4_0x8 && interleave_for_decode({file_type, w.get(), rows, cols}, w.get()).type != t)
        continue;  // no kernel here
      std::vector<uint8_t> act(std::max(act_row_bytes(t, cols), size_t{1}));
      quantize_activation(t, x.data(), act.data(), cols);
      const void* a = act_row_bytes(t, cols) > 0 ? static_cast<const void*>(act.data()) : static_cast<const void*>(x.data());
      const DotFn dot = dot_fn(t);
      const GroupDotFn group_dot = group_dot_fn(t);
      float y[8];
      const int reps = rows == 64 ? 20000 : 20;
      float sink = 0;
      const auto t0 = std::chrono::steady_clock::now();
      for (int k = 0; k < reps; ++k)
        if (group_dot) {
          for (int64_t r = 0; r < rows; r += 8) {
            group_dot(w.get() + static_cast<size_t>(r) * stride, a, cols, y);
            sink += y[0];
          }
        } else {
          for (int64_t r = 0; r < rows; ++r) sink += dot(w.get() + static_cast<size_t>(r) * stride, a, cols);
        }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double blocks = static_cast<double>(rows) * reps * cols / 32;
      std::printf("{\"type\": \"%s\", \"rows\": %lld, \"where\": \"%s\", \"gb_s\": %.2f, \"ns_per_32\": %.2f, \"sink\": %g}\n",
                  wtype_name(t), static_cast<long long>(rows), rows == 64 ? "cache" : "memory",
                  static_cast<double>(stride) * static_cast<double>(rows) * reps / s / 1e9, s * 1e9 / blocks, sink);
    }
  }
  return 0;
}
