// The main-job commands: `ask` (one question, streamed or as JSON) and `chat` (a conversation on a
// terminal), both over documents or an index.
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace longqa::apps {

struct AskCommandState;  // option storage the callbacks read; owned by the caller until parsing ends

std::shared_ptr<AskCommandState> add_ask_commands(CLI::App& app);

}  // namespace longqa::apps
