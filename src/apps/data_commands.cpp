#include "apps/data_commands.h"

#include <CLI/CLI.hpp>
#include <cstdio>

#include "data/bpe_trainer.h"
#include "data/long_sft.h"
#include "data/pretrain.h"
#include "engine/tokenizer.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace longqa::apps {
using nlohmann::json;

struct DataCommandState {
  std::string tokenizer, out, preset, mix, tokens;
  std::vector<std::string> files;
  data::PretrainOptions pretrain;
  data::LongSftOptions sft;
  std::vector<std::string> blend;
  std::string format = "messages";
  data::BpeTrainOptions bpe;
};

namespace {

void print_bad_records(const json& bad) {
  if (bad["bad"].get<uint64_t>() == 0) return;
  std::fprintf(stderr, "longqa: %llu bad records skipped, for example:\n", bad["bad"].get<unsigned long long>());
  for (size_t i = 0; i < std::min<size_t>(5, bad["examples"].size()); ++i)
    std::fprintf(stderr, "  %s\n", bad["examples"][i].get<std::string>().c_str());
}

void print_pretrain_summary(const json& r) {
  std::printf("%s: %llu sequences of %llu tokens (%s), %llu tokens, %llu documents; %.1f MB/s, %.0f tokens/s\n",
              r["finished"].get<bool>() ? "wrote" : "stopped (resumable)", r["sequences"].get<unsigned long long>(),
              r["seq_len"].get<unsigned long long>(), r["dtype"].get<std::string>().c_str(),
              r["tokens"].get<unsigned long long>(), r["documents_written"].get<unsigned long long>(),
              r["input_mb_per_s"].get<double>(), r["tokens_per_s"].get<double>());
  for (const auto& [name, s] : r["sources"].items()) {
    std::printf("  %-24s %12llu tokens  share %.4f -> %.4f", name.c_str(), s["tokens_written"].get<unsigned long long>(),
                s["share_before"].get<double>(), s["share_after"].get<double>());
    if (s.contains("share_target")) std::printf(" (target %.4f)", s["share_target"].get<double>());
    std::printf("\n");
  }
  print_bad_records(r["bad_records"]);
  for (const auto& name : r["sources_short_of_budget"])
    std::fprintf(stderr, "longqa: warning: the input ran out before source %s filled its budget\n", name.get<std::string>().c_str());
}

void cmd_pretrain(DataCommandState& s, const CLI::App& cmd) {
  data::PretrainOptions o;
  if (!s.preset.empty()) data::apply_preset(s.preset, o);
  // Options given on the command line override the preset's.
  const data::PretrainOptions& given = s.pretrain;
  if (cmd.count("--seq-len")) o.seq_len = given.seq_len;
  if (cmd.count("--separator")) o.separator = given.separator;
  if (cmd.count("--text-field")) o.text_field = given.text_field;
  if (cmd.count("--source-field")) o.source_field = given.source_field;
  if (cmd.count("--short-keep")) o.short_keep = given.short_keep;
  if (cmd.count("--short-threshold")) o.short_threshold = given.short_threshold;
  if (cmd.count("--chars-per-token")) o.chars_per_token = given.chars_per_token;
  if (cmd.count("--mix")) o.mix = data::parse_mix(s.mix);
  if (cmd.count("--tokens")) o.tokens = data::parse_count(s.tokens);
  o.seed = given.seed;
  o.threads = given.threads;
  o.strict = given.strict;
  o.resume = given.resume;
  o.tokenizer_name = s.tokenizer;
  const auto tokenizer = load_tokenizer(s.tokenizer);
  print_pretrain_summary(data::run_pretrain(*tokenizer, s.files, s.out, o));
  std::printf("report: %s.report.json\n", s.out.c_str());
}

void cmd_long_sft(DataCommandState& s) {
  data::LongSftOptions o = s.sft;
  o.format = data::parse_sft_format(s.format);
  for (const std::string& b : s.blend) o.blend.push_back(data::parse_blend(b));
  const auto tokenizer = load_tokenizer(s.tokenizer);
  const json r = data::run_long_sft(*tokenizer, s.files, s.out, o);
  const json& l = r["long"];
  std::printf("wrote %llu samples to %s: %llu long (%.4f) from %llu of %llu stories, %llu..%llu tokens (mean %.0f)\n",
              r["samples"].get<unsigned long long>(), s.out.c_str(), l["samples"].get<unsigned long long>(),
              l["share"].get<double>(), l["stories_used"].get<unsigned long long>(), l["stories"].get<unsigned long long>(),
              l["min_tokens"].get<unsigned long long>(), l["max_tokens"].get<unsigned long long>(), l["mean_tokens"].get<double>());
  for (const auto& b : r["blend"])
    std::printf("  %-40s %8llu samples  share %.4f (asked %.4f), %.2f passes over %llu records\n",
                b["file"].get<std::string>().c_str(), b["samples"].get<unsigned long long>(), b["share"].get<double>(),
                b["ratio"].get<double>(), b["passes"].get<double>(), b["records_usable"].get<unsigned long long>());
  for (const auto& [reason, n] : l["skipped"].items())
    std::fprintf(stderr, "longqa: %llu questions skipped: %s\n", n.get<unsigned long long>(), reason.c_str());
  print_bad_records(r["bad_records"]);
  std::printf("report: %s.report.json\n", s.out.c_str());
}

void cmd_tokenizer(DataCommandState& s) {
  const data::BpeTrainResult r = data::train_bpe(s.files, s.bpe);
  write_file_atomically(s.out, r.tokenizer.dump(2) + "\n");
  const size_t vocab = r.tokenizer["model"]["vocab"].size() + r.tokenizer["added_tokens"].size();
  std::printf("wrote %s: %zu tokens (%llu merges) from %.1f MB, %llu words (%llu distinct) in %.1f s\n", s.out.c_str(), vocab,
              static_cast<unsigned long long>(r.merges), static_cast<double>(r.bytes) / 1e6,
              static_cast<unsigned long long>(r.words), static_cast<unsigned long long>(r.unique_words), r.seconds);
  if (vocab < s.bpe.vocab_size)
    std::fprintf(stderr, "longqa: warning: no pair occurs %llu times any more: the vocabulary stops at %zu of %zu tokens\n",
                 static_cast<unsigned long long>(s.bpe.min_frequency), vocab, s.bpe.vocab_size);
}

}  // namespace

std::shared_ptr<DataCommandState> add_data_commands(CLI::App& app) {
  auto s = std::make_shared<DataCommandState>();
  auto* data = app.add_subcommand("data", "prepare training data: continued pretraining, long SFT, tokenizers");
  data->require_subcommand(1);

  auto* pre = data->add_subcommand("pretrain", "JSONL corpora -> per-source length upsampling -> Megatron .bin/.idx");
  pre->add_option("--tokenizer", s->tokenizer, "GGUF file, HF model directory or tokenizer.json")->required();
  pre->add_option("--out", s->out, "output prefix: PREFIX.bin, PREFIX.idx, PREFIX.report.json")->required();
  pre->add_option("files", s->files, "JSONL files (plain, .gz or .zst)")->required();
  pre->add_option("--preset", s->preset, "chatqa2: the paper's settings (options given here override them)");
  pre->add_option("--seq-len", s->pretrain.seq_len, "tokens per packed sequence (default 131072)");
  pre->add_option("--separator", s->pretrain.separator, "text between documents (default \"<s>\", never BOS/EOS)");
  pre->add_option("--text-field", s->pretrain.text_field, "dotted path of the text (default text)");
  pre->add_option("--source-field", s->pretrain.source_field,
                  "dotted path of the source (default meta.redpajama_set_name; \"\" for one source)");
  pre->add_option("--short-keep", s->pretrain.short_keep,
                  "probability of keeping a document under --short-threshold tokens (default 1; chatqa2: 0.1)");
  pre->add_option("--short-threshold", s->pretrain.short_threshold, "estimated tokens under which a document is short (4096)");
  pre->add_option("--chars-per-token", s->pretrain.chars_per_token, "characters per token for that estimate (3.68)");
  pre->add_option("--mix", s->mix, "token shares per source, SOURCE=SHARE,... (default: the input's own)");
  pre->add_option("--tokens", s->tokens, "tokens to write in all, e.g. 10b (default: the whole input, no budgets)");
  pre->add_option("--seed", s->pretrain.seed, "seed of the keep/drop draws")->capture_default_str();
  pre->add_option("-t,--threads", s->pretrain.threads, "worker threads (default: all cores)");
  pre->add_flag("--strict", s->pretrain.strict, "stop at the first bad record instead of counting it");
  pre->add_flag("--resume", s->pretrain.resume, "continue the interrupted run recorded in PREFIX.state.json");
  pre->callback([s, pre] { cmd_pretrain(*s, *pre); });

  auto* sft = data->add_subcommand("long-sft", "NarrativeQA -> long ChatQA-format SFT samples, blended with short SFT sets");
  sft->add_option("--tokenizer", s->tokenizer, "GGUF file, HF model directory or tokenizer.json")->required();
  sft->add_option("--narrativeqa", s->files, "NarrativeQA rows as JSONL (Hugging Face's deepmind/narrativeqa)")->required();
  sft->add_option("--out", s->out, "output JSONL (the report goes to OUT.report.json)")->required();
  sft->add_option("--min-tokens", s->sft.min_tokens, "shortest sample, prompt and answer")->capture_default_str();
  sft->add_option("--max-tokens", s->sft.max_tokens, "longest sample")->capture_default_str();
  sft->add_option("--blend", s->blend, "FILE:RATIO: a short SFT JSONL set and its share of the output's samples");
  sft->add_option("--format", s->format, "messages (chat form) or nemo (input/output)")->capture_default_str();
  sft->add_option("--instruction", s->sft.instruction, "text before each question (default: ChatQA's)");
  sft->add_option("--max-questions", s->sft.max_questions, "questions used per story (default: all)");
  sft->add_option("--seed", s->sft.seed, "seed of the windows, summary positions and the blend")->capture_default_str();
  sft->add_option("-t,--threads", s->sft.threads, "worker threads (default: all cores)");
  sft->add_flag("--strict", s->sft.strict, "stop at the first bad record instead of counting it");
  sft->callback([s] { cmd_long_sft(*s); });

  auto* tok = data->add_subcommand("tokenizer", "train a byte-level BPE on a corpus and write tokenizer.json");
  tok->add_option("--vocab", s->bpe.vocab_size, "tokens in all: 256 bytes, merges and 2 special tokens")->required();
  tok->add_option("--out", s->out, "the tokenizer.json to write")->required();
  tok->add_option("files", s->files, "text files (plain, .gz or .zst)")->required();
  tok->add_option("--min-frequency", s->bpe.min_frequency, "a pair seen fewer times is never merged")->capture_default_str();
  tok->add_option("-t,--threads", s->bpe.threads, "worker threads (default: all cores)");
  tok->callback([s] { cmd_tokenizer(*s); });
  return s;
}

}  // namespace longqa::apps
