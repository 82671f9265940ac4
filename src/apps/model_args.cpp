#include "apps/model_args.h"

namespace longqa::apps {

void add_sampling_options(CLI::App* cmd, SamplerOptions& s) {
  cmd->add_option("--temp", s.temperature, "temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "keep the k most likely tokens; 0 = off")->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "nucleus sampling mass; 1 = off")->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "drop tokens below min-p x the top probability")->capture_default_str();
  cmd->add_option("--repeat-penalty", s.repeat_penalty, "repetition penalty; 1 = off")->capture_default_str();
  cmd->add_option("--repeat-last-n", s.repeat_last_n, "tokens the penalty looks back at; -1 = all")->capture_default_str();
  cmd->add_option("--seed", s.seed, "random seed")->capture_default_str();
}

}  // namespace longqa::apps
