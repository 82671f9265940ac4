// Shared helpers for the test suite: paths of the vendored fixtures, JSON loading, scratch
// directories, running the longqa binary, and exact dot products to bound kernels' errors by.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace longqa::test {

inline std::string data(const std::string& rel) { return std::string(LONGQA_TEST_DATA) + "/" + rel; }
inline std::string bundled(const std::string& rel) { return std::string(LONGQA_DATA_DIR) + "/" + rel; }
inline std::string model_dir(const std::string& name) { return data("models/" + name); }

inline const nlohmann::json& ref() {
  static const nlohmann::json j = [] {
    std::ifstream in(data("ref.json"));
    return nlohmann::json::parse(in);
  }();
  return j;
}
inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// w . x over n elements in double, and sum |w_i x_i|: kernels' errors are bounded relative to the latter.
struct ExactDot {
  double value = 0, magnitude = 0;
};
inline ExactDot exact_dot(const float* w, const float* x, int64_t n) {
  ExactDot d;
  for (int64_t i = 0; i < n; ++i) {
    const double p = static_cast<double>(w[i]) * x[i];
    d.value += p;
    d.magnitude += p < 0 ? -p : p;
  }
  return d;
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// A fresh directory removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("longqa-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int status;
  std::string out;
  std::string err;
};

// Runs the longqa binary with arguments (shell-quoted by the caller) and optional stdin text.
inline CommandResult run_longqa(const std::string& args, const std::string& input = "") {
  TempDir tmp;
  const std::string in = tmp.file("in"), out = tmp.file("out"), err = tmp.file("err");
  { std::ofstream(in, std::ios::binary) << input; }
  const std::string cmd = std::string(LONGQA_BIN) + " " + args + " <" + in + " >" + out + " 2>" + err;
  const int rc = std::system(cmd.c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  };
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(out), slurp(err)};
}

}  // namespace longqa::test
