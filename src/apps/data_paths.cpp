#include "apps/data_paths.h"

#include <filesystem>
#include <vector>

#include "util/error.h"

namespace longqa::apps {
namespace fs = std::filesystem;

namespace {

// source_relative: the path beside the sources (relative to data/); installed: under share/longqa.
std::string find_bundled(const fs::path& source_relative, const std::string& installed, const std::string& what) {
  std::vector<fs::path> candidates = {(fs::path(LONGQA_DATA_DIR) / source_relative).lexically_normal()};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back((exe.parent_path() / "../share/longqa" / installed).lexically_normal());
  for (const fs::path& p : candidates)
    if (fs::exists(p, ec)) return p.string();
  throw Error(what + " is missing (looked in " + candidates[0].string() +
              (candidates.size() > 1 ? " and " + candidates[1].string() : "") + ")");
}

}  // namespace

std::string bundled_data(const std::string& relative) { return find_bundled(relative, relative, "bundled data " + relative); }

std::string default_model() {
  return find_bundled("../models/nano-chatqa.gguf", "models/nano-chatqa.gguf", "no --model given, and the default model");
}

}  // namespace longqa::apps
