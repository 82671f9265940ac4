#include "apps/data_paths.h"

#include <filesystem>
#include <vector>

#include "util/error.h"

namespace longqa::apps {
namespace fs = std::filesystem;

std::string bundled_data(const std::string& relative) {
  std::vector<fs::path> candidates = {fs::path(LONGQA_DATA_DIR) / relative};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path() / "../share/longqa" / relative);
  for (const fs::path& p : candidates)
    if (fs::exists(p, ec)) return p.lexically_normal().string();
  throw Error("bundled data " + relative + " is missing (looked in " + candidates[0].string() +
              (candidates.size() > 1 ? " and " + candidates[1].lexically_normal().string() : "") + ")");
}

}  // namespace longqa::apps
