// Memory read bandwidth of this machine: the physical limit of CPU decode (tokens/s <= GB/s / bytes
// read per token). Sums a 1 GiB buffer with N threads, several times; prints the median GB/s. The
// buffer sits on 2 MiB pages where the kernel gives them, as the engine's weights do (see MappedFile):
// on 4 KiB pages the TLB, not the memory, sets the pace.
// usage: longqa-bench-membw [THREADS] [REPEATS]
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::max(1, std::atoi(argv[1])) : omp_get_max_threads();
  const int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 7;
  const size_t bytes = size_t{1} << 30;
  const size_t n = bytes / sizeof(uint64_t);
  auto* buffer = static_cast<uint64_t*>(std::aligned_alloc(size_t{2} << 20, bytes));
  if (!buffer) return 1;
  madvise(buffer, bytes, MADV_HUGEPAGE);
#pragma omp parallel for num_threads(threads)
  for (size_t i = 0; i < n; ++i) buffer[i] = i & 1023;  // touch every page first
  std::vector<double> gbs;
  uint64_t sink = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t total = 0;  // integer sums vectorise: the loop runs at the speed of the loads
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static)
    for (size_t i = 0; i < n; ++i) total += buffer[i];
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink += total;
    gbs.push_back(static_cast<double>(bytes) / 1e9 / s);
  }
  std::sort(gbs.begin(), gbs.end());
  std::printf("{\"threads\": %d, \"bytes\": %zu, \"median_read_gb_s\": %.2f, \"max_read_gb_s\": %.2f, \"checksum\": %llu}\n",
              threads, bytes, gbs[gbs.size() / 2], gbs.back(), static_cast<unsigned long long>(sink));
  std::free(buffer);
  return 0;
}
