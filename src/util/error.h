// longqa::Error — the one exception type raised on bad input or failed I/O.
// Messages name the file, key, tensor or line at fault so that the CLI can print them as one line.
#pragma once

#include <stdexcept>
#include <string>

namespace longqa {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace longqa
