#include "apps/commands.h"

#include "apps/bench.h"
#include "apps/index_commands.h"
#include "apps/model_args.h"
#include "apps/ask_commands.h"
#include "apps/eval_commands.h"
#include "apps/data_commands.h"
#include "apps/train_commands.h"
#include "engine/quantize.h"
#include "engine/random_model.h"

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <thread>

#include "engine/convert.h"
#include "engine/embedding.h"
#include "engine/generator.h"
#include "engine/gguf.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/transformer.h"
#include "util/error.h"

namespace longqa::apps {
namespace {

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || v < 0 || v > INT32_MAX) throw Error("--ids: '" + word + "' is not a token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) throw Error("--ids: no token ids given");
  return ids;
}

void print_floats(std::ostream& out, const float* v, size_t n) {
  char buf[32];
  out << '[';
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%s%.9g", i ? ", " : "", static_cast<double>(v[i]));
    out << buf;
  }
  out << ']';
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += (i ? " x " : "") + std::to_string(s[i]);
  return out;
}

void cmd_info(const ModelArgs& a) {
  const auto model = a.load();
  const ModelConfig& c = model->config();
  const Tokenizer& tok = model->tokenizer();
  int64_t params = 0;
  for (const auto& t : model->tensors()) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    params += n;
  }
  std::printf("model:          %s (%s)\n", model->path().c_str(), model->format() == "gguf" ? "GGUF" : "HF safetensors");
  if (const auto* g = model->gguf_file()) std::printf("gguf version:   %u, alignment %zu\n", g->version(), g->alignment());
  std::printf("architecture:   %s\n", arch_name(c.arch));
  std::printf("parameters:     %lld\n", static_cast<long long>(params));
  std::printf("layers:         %lld\n", static_cast<long long>(c.n_layers));
  std::printf("hidden:         %lld\n", static_cast<long long>(c.hidden));
  std::printf("ffn:            %lld\n", static_cast<long long>(c.ffn));
  std::printf("heads:          %lld query, %lld key/value (head dim %lld)\n", static_cast<long long>(c.n_heads),
              static_cast<long long>(c.n_kv_heads), static_cast<long long>(c.head_dim));
  std::printf("vocab:          %lld\n", static_cast<long long>(c.vocab_size));
  std::printf("context:        %lld\n", static_cast<long long>(c.context_length));
  std::printf("sliding window: %s\n", c.sliding_window > 0 ? std::to_string(c.sliding_window).c_str() : "none");
  std::printf("rms eps:        %g\n", c.rms_eps);
  std::printf("attn biases:    %s\n", c.attn_bias ? "yes" : "no");
  std::printf("tied output:    %s\n", c.tied_embeddings ? "yes" : "no");
  std::printf("rope:           base %g, scaling %s", c.rope.theta, rope_scaling_name(c.rope.scaling));
  if (c.rope.scaling != RopeScaling::None) std::printf(" x%g (original context %lld)", c.rope.factor, static_cast<long long>(c.rope.original_context));
  if (!c.rope.freq_factors.empty()) std::printf(", rope_freqs tensor");
  std::printf(", %s pairs\n", c.rope.interleaved ? "interleaved" : "half-split");
  std::printf("tokenizer:      %s, %d tokens, %zu added/special\n", tok.kind().c_str(), tok.vocab_size(), tok.added_tokens().size());
  std::printf("bos / stop:     %d /", c.bos_id);
  for (int32_t id : model->stop_tokens()) std::printf(" %d %s", id, tok.token_text(id).c_str());
  std::printf("\ntensors:        %zu\n", model->tensors().size());
  for (const auto& t : model->tensors())
    std::printf("  %-48s %-5s %s\n", t.name.c_str(), t.type.c_str(), shape_str(t.shape).c_str());
  if (const auto* g = model->gguf_file()) {
    std::printf("metadata:       %zu keys\n", g->metadata().size());
    for (const auto& [k, v] : g->metadata()) std::printf("  %-48s %s\n", k.c_str(), v.to_display().c_str());
  }
}

void cmd_tokenize(const std::string& path) {
  const auto tok = load_tokenizer(path);
  const std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  const std::vector<int32_t> ids = tok->encode(text);
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  std::printf("%s\n", line.c_str());
}

void cmd_logits(const ModelArgs& a, const std::string& ids_text, bool all) {
  const std::vector<int32_t> ids = parse_ids(ids_text);
  const auto model = a.load();
  Session s(*model, {.context = static_cast<int64_t>(ids.size()), .threads = a.threads});
  const size_t v = static_cast<size_t>(model->config().vocab_size);
  std::vector<float> logits;  // every position's row only when asked: a 128K prompt would need 64 GB
  if (all) {
    s.evaluate(ids, &logits, nullptr);
  } else {
    const auto last = s.decode(ids);
    logits.assign(last.begin(), last.end());
  }
  std::ostringstream out;
  out << "{\"logits\": [";
  for (size_t row = 0; row < logits.size() / v; ++row) {
    if (row) out << ", ";
    print_floats(out, logits.data() + row * v, v);
  }
  out << "]}\n";
  std::fputs(out.str().c_str(), stdout);
}

void cmd_embed(const ModelArgs& a, const std::optional<std::string>& ids_text, const std::optional<std::string>& text,
               const std::string& pooling, bool append_eos) {
  if (ids_text.has_value() == text.has_value()) throw Error("embed: give exactly one of --ids and --text");
  const Pooling p = parse_pooling(pooling);
  const auto model = a.load();
  std::vector<int32_t> ids = ids_text ? parse_ids(*ids_text) : model->tokenizer().encode(*text);
  if (append_eos) {
    if (model->config().eos_ids.empty()) throw Error("--append-eos: the model defines no EOS token");
    ids.push_back(model->config().eos_ids[0]);
  }
  if (ids.empty()) throw Error("embed: the text has no tokens");
  Session s(*model, {.context = static_cast<int64_t>(ids.size()), .threads = a.threads});
  std::vector<float> e, hidden;
  embed_tokens(s, ids, p, e, hidden);
  std::ostringstream out;
  out << "{\"embedding\": ";
  print_floats(out, e.data(), e.size());
  out << "}\n";
  std::fputs(out.str().c_str(), stdout);
}

struct RunArgs {
  std::string prompt;
  std::string kv_type = "f32";
  int64_t n_predict = 256;
  int64_t ctx = 0;
  bool no_bos = false;
  bool verbose = false;
  std::vector<std::string> stop;
  SamplerOptions sampling;
};

void cmd_run(const ModelArgs& a, RunArgs r) {
  const auto model = a.load();
  const Tokenizer& tok = model->tokenizer();
  std::vector<int32_t> prompt = tok.encode(r.prompt);
  const int32_t bos = model->config().bos_id;
  if (!r.no_bos && bos >= 0 && (prompt.empty() || prompt[0] != bos)) prompt.insert(prompt.begin(), bos);
  if (r.n_predict < 0) throw Error("-n must not be negative");
  const int64_t need = static_cast<int64_t>(prompt.size()) + r.n_predict;
  const int64_t ctx = r.ctx > 0 ? r.ctx : std::min<int64_t>(need, model->config().context_length);
  Session s(*model, {.context = ctx, .threads = a.threads, .kv_type = parse_kv_type(r.kv_type)});
  GenerateOptions g;
  g.max_tokens = r.n_predict;
  g.sampling = r.sampling;
  g.stop = r.stop;
  const GenerateResult res = generate(s, prompt, g, [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::printf("\n");
  if (r.verbose)
    std::fprintf(stderr, "[prompt %lld tokens, %.1f tok/s; generated %lld tokens, %.1f tok/s; finish: %s]\n",
                 static_cast<long long>(res.prompt_tokens), res.prompt_tokens / std::max(res.prefill_seconds, 1e-9),
                 static_cast<long long>(res.completion_tokens), res.completion_tokens / std::max(res.decode_seconds, 1e-9),
                 res.finish_reason.c_str());
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"longqa: question answering over long documents with open models"};
  app.require_subcommand(1);
  // Option storage; CLI11 writes into these while parsing, and the callbacks read them.
  ModelArgs info_args, logits_args, embed_args, run_args;
  std::string tokenize_path, ids, convert_in, convert_out, convert_type = "f16", pooling = "last";
  std::optional<std::string> embed_ids, embed_text;
  bool all = false, append_eos = false;
  RunArgs run;

  auto* info = app.add_subcommand("info", "show a model's architecture, hyper-parameters, tokenizer and tensors");
  info_args.add(info);
  info->callback([&] { cmd_info(info_args); });

  auto* tokenize = app.add_subcommand("tokenize", "print the token ids of the UTF-8 text on stdin");
  tokenize->add_option("-m,--model", tokenize_path, "GGUF file, HF model directory or tokenizer.json (default: the bundled nano-ChatQA model)");
  tokenize->callback([&] { cmd_tokenize(model_or_default(tokenize_path)); });

  auto* logits = app.add_subcommand("logits", "print the logits for a sequence of token ids as JSON");
  logits_args.add(logits);
  logits->add_option("--ids", ids, "token ids separated by spaces")->required();
  logits->add_flag("--all", all, "one row per position instead of the last only");
  logits->callback([&] { cmd_logits(logits_args, ids, all); });

  auto* embed = app.add_subcommand("embed", "print an L2-normalised embedding as JSON");
  embed_args.add(embed);
  embed->add_option("--ids", embed_ids, "token ids separated by spaces");
  embed->add_option("--text", embed_text, "text to tokenize (no BOS is added)");
  embed->add_option("--pooling", pooling, "last (E5-mistral rule) or mean")->capture_default_str();
  embed->add_flag("--append-eos", append_eos, "append the EOS token before pooling (E5-mistral documents and queries)");
  embed->callback([&] { cmd_embed(embed_args, embed_ids, embed_text, pooling, append_eos); });

  auto* gen = app.add_subcommand("run", "generate text from a prompt, streamed to stdout");
  run_args.add(gen);
  gen->add_option("-p,--prompt", run.prompt, "the prompt text")->required();
  gen->add_option("-n,--n-predict", run.n_predict, "tokens to generate at most")->capture_default_str();
  gen->add_option("--ctx", run.ctx, "KV-cache size in tokens (default: prompt + n, up to the model's context)");
  gen->add_option("--kv-type", run.kv_type, "KV cache type: f32, f16, bf16 or q8_0")->capture_default_str();
  add_sampling_options(gen, run.sampling);
  gen->add_option("--stop", run.stop, "stop when this string is generated (repeatable)");
  gen->add_flag("--no-bos", run.no_bos, "do not prepend the BOS token");
  gen->add_flag("-v,--verbose", run.verbose, "print token counts and speeds to stderr");
  gen->callback([&] { cmd_run(run_args, run); });

  auto* convert = app.add_subcommand("convert", "convert an HF model directory to a GGUF file");
  convert->add_option("hf_dir", convert_in, "HF model directory")->required();
  convert->add_option("out", convert_out, "output .gguf path")->required();
  convert->add_option("--type", convert_type, "f32, f16 or bf16")->capture_default_str();
  convert->callback([&] { convert_hf_to_gguf(convert_in, convert_out, parse_convert_type(convert_type)); });

  std::string quant_in, quant_out, quant_type;
  int quant_threads = 0;
  auto* quantize = app.add_subcommand("quantize", "rewrite a GGUF model in a quantized type");
  quantize->add_option("in", quant_in, "input GGUF (F32, F16 or BF16 weights)")->required();
  quantize->add_option("out", quant_out, "output GGUF")->required();
  quantize->add_option("type", quant_type, "q8_0, q4_0, q4_k_m, q5_k_m, q6_k, f16 or bf16")->required();
  quantize->add_option("-t,--threads", quant_threads, "worker threads (default: all)");
  quantize->callback([&] {
    quantize_gguf(quant_in, quant_out, parse_quant_mix(quant_type),
                  quant_threads > 0 ? quant_threads : static_cast<int>(std::thread::hardware_concurrency()));
  });

  auto* model_cmd = app.add_subcommand("model", "make model files");
  model_cmd->require_subcommand(1);
  std::string shape, random_type = "f16", random_out;
  uint64_t random_seed = 1;
  int random_threads = 0;
  auto* random = model_cmd->add_subcommand("random", "a model with random weights and a real shape, for benchmarks");
  random->add_option("--shape", shape, "tiny, llama3-1b or llama3-8b")->required();
  random->add_option("--type", random_type, "q8_0, q4_0, q4_k_m, q5_k_m, q6_k, f16 or bf16")->capture_default_str();
  random->add_option("--out", random_out, "output GGUF")->required();
  random->add_option("--seed", random_seed, "random seed")->capture_default_str();
  random->add_option("-t,--threads", random_threads, "worker threads (default: all)");
  random->callback([&] {
    write_random_model(model_shape(shape), parse_quant_mix(random_type), random_out, random_seed,
                       random_threads > 0 ? random_threads : static_cast<int>(std::thread::hardware_concurrency()));
  });

  BenchOptions bench_options;
  auto* bench = app.add_subcommand("bench", "measure prompt processing and generation speed");
  bench->add_option("-m,--model", bench_options.model, kModelHelp);
  bench->add_option("-p,--prompt", bench_options.prompt, "prompt tokens to process")->capture_default_str();
  bench->add_option("-n,--generate", bench_options.generate, "tokens to generate")->capture_default_str();
  bench->add_option("--depth", bench_options.depth, "tokens already in the cache")->capture_default_str();
  bench->add_option("-t,--threads", bench_options.threads, "worker threads (default: all)");
  bench->add_option("-r,--repetitions", bench_options.repetitions, "runs per figure (the median is shown)")->capture_default_str();
  bench->add_option("--kv-type", bench_options.kv_type, "KV cache type: f32, f16, bf16 or q8_0")->capture_default_str();
  bench->add_flag("--json", bench_options.json, "print one JSON object");
  add_mmap_flag(bench, bench_options.mmap);
  bench->callback([&] {
    bench_options.model = model_or_default(bench_options.model);
    run_bench(bench_options);
  });

  const auto index_state = add_index_commands(app);
  const auto ask_state = add_ask_commands(app);
  const auto eval_state = add_eval_commands(app);
  const auto data_state = add_data_commands(app);
  const auto train_state = add_train_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "longqa: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "longqa: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace longqa::apps
