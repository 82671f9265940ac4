// Writing a whole file so that readers (and a crash) see either the old file or the complete new
// one, never a torn one: the bytes go to PATH.tmp, are synced, and replace PATH by rename.
#pragma once

#include <string>
#include <string_view>

namespace longqa {

void write_file_atomically(const std::string& path, std::string_view bytes);  // throws Error naming the file

}  // namespace longqa
