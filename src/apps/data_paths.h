// Where the files longqa bundles (the repository's data/ folder) are found at run time.
#pragma once

#include <string>

namespace longqa::apps {

// The absolute path of data/<relative>: beside the sources this binary was built from, or in an
// installed ../share/longqa beside the executable. Raises Error naming both places if neither has it.
std::string bundled_data(const std::string& relative);

// The model longqa ships (models/nano-chatqa.gguf beside the sources, or ../share/longqa/models): what
// every command that takes --model uses when none is given. Raises Error when it is missing.
std::string default_model();

}  // namespace longqa::apps
