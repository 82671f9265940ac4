// Parsing numbers out of command-line values and list items.
#pragma once

#include <optional>
#include <string>

namespace longqa {

// The number the whole string spells (std::stod's syntax), or nullopt when it spells none or has
// anything after it. Out-of-range values are nullopt too.
inline std::optional<double> parse_double(const std::string& s) {
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace longqa
