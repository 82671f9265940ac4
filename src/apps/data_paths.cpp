#include "apps/data_paths.h"

#include <filesystem>
#include <vector>

#include "util/error.h"

namespace longqa::apps {
namespace fs = std::filesystem;
namespace {

// `relative` under the source tree's folder `built`, else under ../share/longqa/`installed` beside
// the executable.
std::string find_bundled(const fs::path& built, const fs::path& installed, const std::string& relative,
                         const std::string& what) {
  std::vector<fs::path> candidates = {built / relative};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path() / "../share/longqa" / installed / relative);
  for (const fs::path& p : candidates)
    if (fs::exists(p, ec)) return p.lexically_normal().string();
  throw Error(what + " " + relative + " is missing (looked in " + candidates[0].string() +
              (candidates.size() > 1 ? " and " + candidates[1].lexically_normal().string() : "") + ")");
}

}  // namespace

std::string bundled_data(const std::string& relative) {
  return find_bundled(LONGQA_DATA_DIR, "", relative, "bundled data");
}

std::string default_model() {
  return find_bundled(LONGQA_MODELS_DIR, "models", "nano-chatqa.gguf", "the default model");
}

}  // namespace longqa::apps
