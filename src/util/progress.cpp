#include "util/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace longqa {

Progress::Progress(std::string label, uint64_t total, bool bytes)
    : label_(std::move(label)),
      total_(total),
      bytes_(bytes),
      enabled_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

Progress::~Progress() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
}

void Progress::update(uint64_t done, const std::string& detail) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(100) && (total_ == 0 || done < total_)) return;
  last_ = now;
  drawn_ = true;
  const double seconds = std::max(1e-9, std::chrono::duration<double>(now - start_).count());
  char rate[64];
  if (bytes_)
    std::snprintf(rate, sizeof rate, "%.1f MB/s", static_cast<double>(done) / 1e6 / seconds);
  else
    std::snprintf(rate, sizeof rate, "%.1f/s", static_cast<double>(done) / seconds);
  std::string tail = detail.size() > 40 ? "..." + detail.substr(detail.size() - 37) : detail;
  if (total_ == 0) {  // an unknown amount of work: the rate alone
    std::fprintf(stderr, "\r\033[K%s %s %s", label_.c_str(), rate, tail.c_str());
  } else {
    const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    constexpr int kWidth = 30;
    std::string bar(kWidth, ' ');
    std::fill_n(bar.begin(), static_cast<int>(fraction * kWidth), '#');
    std::fprintf(stderr, "\r\033[K%s [%s] %3.0f%% %s %s", label_.c_str(), bar.c_str(), fraction * 100, rate, tail.c_str());
  }
  std::fflush(stderr);
}

}  // namespace longqa
