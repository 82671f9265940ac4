// Where the files longqa bundles (the repository's data/ folder) are found at run time.
#pragma once

#include <string>

namespace longqa::apps {

// The absolute path of data/<relative>: beside the sources this binary was built from, or in an
// installed ../share/longqa beside the executable. Raises Error naming both places if neither has it.
std::string bundled_data(const std::string& relative);

}  // namespace longqa::apps
