// The retrieval commands: `index add`, `index rm`, `index stats` and `search`.
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace longqa::apps {

struct IndexCommandState;  // option storage the callbacks read; owned by the caller until parsing ends

std::shared_ptr<IndexCommandState> add_index_commands(CLI::App& app);

}  // namespace longqa::apps
