// A one-line progress bar on stderr for long runs (`index add`), drawn only when stderr is a terminal
// and at most ten times a second. Not thread-safe: one thread reports.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace longqa {

class Progress {
 public:
  // total: units of work (bytes, chunks), 0 when unknown (no bar then); bytes: the rate in MB/s.
  Progress(std::string label, uint64_t total, bool bytes);
  ~Progress();  // clears the line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void update(uint64_t done, const std::string& detail = "");
  bool enabled() const { return enabled_; }

 private:
  std::string label_;
  uint64_t total_;
  bool bytes_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace longqa
