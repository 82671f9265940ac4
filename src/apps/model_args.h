// Command-line options shared by the commands that load a model or sample from one.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "apps/data_paths.h"
#include "engine/model.h"
#include "engine/sampler.h"

namespace longqa::apps {

// --mmap: where the weights live (see MappedFile).
inline void add_mmap_flag(CLI::App* cmd, bool& mmap) {
  cmd->add_flag("--mmap", mmap, "map the weights from the page cache (instant start, shared between processes) instead of reading them into huge-page memory (faster decode; Q4_0 rows rearranged for it)");
}
inline FileResidency residency(bool mmap) { return mmap ? FileResidency::Mapped : FileResidency::HugePages; }

// -m/--model: a GGUF file or HF directory, the bundled default model when not given.
inline constexpr const char* kModelHelp = "GGUF file or HF model directory (default: the bundled nano-ChatQA model)";
inline std::string model_or_default(const std::string& path) { return path.empty() ? default_model() : path; }

// -m/--model, -t/--threads, the RoPE overrides and --mmap.
struct ModelArgs {
  std::string path;  // empty: the default model
  int threads = 0;
  std::optional<double> rope_theta;
  std::optional<std::string> rope_scaling;
  std::optional<double> rope_factor;
  std::optional<int64_t> rope_original_ctx;
  bool mmap = false;

  void add(CLI::App* cmd) {
    cmd->add_option("-m,--model", path, kModelHelp);
    cmd->add_option("-t,--threads", threads, "worker threads (default: all)");
    cmd->add_option("--rope-theta", rope_theta, "override the RoPE base");
    cmd->add_option("--rope-scaling", rope_scaling, "override RoPE scaling: none, linear, llama3, yarn");
    cmd->add_option("--rope-factor", rope_factor, "override the RoPE scaling factor");
    cmd->add_option("--rope-original-ctx", rope_original_ctx, "override the pre-scaling context length");
    add_mmap_flag(cmd, mmap);
  }

  std::unique_ptr<Model> load() const {
    LoadOptions o;
    o.rope.theta = rope_theta;
    if (rope_scaling) o.rope.scaling = parse_rope_scaling(*rope_scaling, "--rope-scaling");
    o.rope.factor = rope_factor;
    o.rope.original_context = rope_original_ctx;
    o.weights = residency(mmap);
    return Model::load(model_or_default(path), o);
  }
};

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, --seed.
void add_sampling_options(CLI::App* cmd, SamplerOptions& sampling);

}  // namespace longqa::apps
