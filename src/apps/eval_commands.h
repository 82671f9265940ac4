// The evaluation commands: `eval niah` (needle in a haystack, with a heatmap) and `eval score`
// (official-equivalent scoring of prediction files).
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace longqa::apps {

struct EvalCommandState;

std::shared_ptr<EvalCommandState> add_eval_commands(CLI::App& app);

}  // namespace longqa::apps
