// Tokenizer throughput: MB/s of UTF-8 text encoded, median of several runs.
// usage: longqa-bench-tokenizer TOKENIZER(.json|.gguf|dir) [TEXT_FILE] [--repeat N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/tokenizer.h"
#include "util/error.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TOKENIZER [TEXT_FILE] [--repeat N]\n", argv[0]);
    return 2;
  }
  try {
    const auto tok = longqa::load_tokenizer(argv[1]);
    std::string text;
    int repeat = 5;
    for (int i = 2; i < argc; ++i) {
      if (std::strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
        repeat = std::max(1, std::atoi(argv[++i]));
      } else {
        std::ifstream in(argv[i], std::ios::binary);
        if (!in) throw longqa::Error(std::string(argv[i]) + ": cannot open");
        std::stringstream ss;
        ss << in.rdbuf();
        text = ss.str();
      }
    }
    if (text.empty()) {
      // A mixed English/code/multilingual sample, repeated to ~4 MB.
      const std::string sample =
          "The quick brown fox jumps over the lazy dog. It's 12,345 miles away; they'll arrive at 10:30.\n"
          "def f(x):\n    return x ** 2  # squares\n\tÉmile Zola écrivit « Germinal » en 1885. 北京欢迎你. Москва.\n";
      while (text.size() < (4u << 20)) text += sample;
    }
    std::vector<double> mbps;
    size_t n_tokens = 0;
    for (int r = 0; r < repeat; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      n_tokens = tok->encode(text).size();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      mbps.push_back(static_cast<double>(text.size()) / 1e6 / s);
    }
    std::sort(mbps.begin(), mbps.end());
    std::printf("{\"bytes\": %zu, \"tokens\": %zu, \"runs\": %d, \"median_mb_s\": %.2f, \"min_mb_s\": %.2f, \"max_mb_s\": %.2f}\n",
                text.size(), n_tokens, repeat, mbps[mbps.size() / 2], mbps.front(), mbps.back());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
