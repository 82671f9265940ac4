// `longqa train`: trains a Llama-architecture model on a Megatron dataset (see train/trainer.h).
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace longqa::apps {

struct TrainCommandState;

std::shared_ptr<TrainCommandState> add_train_commands(CLI::App& app);

}  // namespace longqa::apps
