// The training-data commands: `data pretrain` (continued-pretraining data in Megatron's indexed
// format), `data long-sft` (long SFT samples from NarrativeQA, blended with short sets) and
// `data tokenizer` (a byte-level BPE trained on a corpus, written as tokenizer.json).
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace longqa::apps {

struct DataCommandState;

std::shared_ptr<DataCommandState> add_data_commands(CLI::App& app);

}  // namespace longqa::apps
