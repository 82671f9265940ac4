// Where the files longqa bundles are found at run time: the repository's data/ folder and its default
// model, models/nano-chatqa.gguf.
#pragma once

#include <string>

namespace longqa::apps {

// The absolute path of data/<relative>: beside the sources this binary was built from, or in an
// installed ../share/longqa beside the executable. Raises Error naming both places if neither has it.
std::string bundled_data(const std::string& relative);

// The model every command that takes --model runs without one: nano-ChatQA (scripts/nano-chatqa.sh
// made it; models/nano-chatqa.md is its report), at models/nano-chatqa.gguf beside the sources or
// ../share/longqa/models/ installed. Raises Error naming both places if neither has it.
std::string default_model();

}  // namespace longqa::apps
