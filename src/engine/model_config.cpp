#include "engine/model_config.h"

#include <nlohmann/json.hpp>

#include "engine/gguf.h"
#include "util/error.h"

namespace longqa {
using json = nlohmann::json;

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::Llama: return "llama";
    case Arch::Mistral: return "mistral";
    case Arch::Qwen2: return "qwen2";
  }
  return "?";
}

const char* rope_scaling_name(RopeScaling s) {
  switch (s) {
    case RopeScaling::None: return "none";
    case RopeScaling::Linear: return "linear";
    case RopeScaling::Llama3: return "llama3";
    case RopeScaling::Yarn: return "yarn";
  }
  return "?";
}

RopeScaling parse_rope_scaling(const std::string& s, const std::string& source) {
  if (s == "none" || s == "default") return RopeScaling::None;
  if (s == "linear") return RopeScaling::Linear;
  if (s == "llama3") return RopeScaling::Llama3;
  if (s == "yarn") return RopeScaling::Yarn;
  throw Error(source + ": RoPE scaling type '" + s + "' is not supported (none, linear, llama3, yarn)");
}

void ModelConfig::validate(const std::string& source) const {
  auto require = [&](bool ok, const std::string& what) {
    if (!ok) throw Error(source + ": " + what);
  };
  require(vocab_size > 0 && vocab_size < (1 << 24), "vocab size " + std::to_string(vocab_size) + " is out of range");
  require(hidden > 0 && hidden <= 65536, "hidden size " + std::to_string(hidden) + " is out of range");
  require(ffn > 0 && ffn <= 1 << 20, "feed-forward size " + std::to_string(ffn) + " is out of range");
  require(n_layers > 0 && n_layers <= 1024, "layer count " + std::to_string(n_layers) + " is out of range");
  require(n_heads > 0 && n_heads <= 1024, "head count " + std::to_string(n_heads) + " is out of range");
  require(n_kv_heads > 0 && n_heads % n_kv_heads == 0,
          "KV head count " + std::to_string(n_kv_heads) + " must divide the head count " + std::to_string(n_heads));
  require(head_dim > 0 && head_dim % 2 == 0 && head_dim <= 1024, "head dim " + std::to_string(head_dim) + " must be even");
  require(context_length > 0 && context_length <= (1 << 24), "context length " + std::to_string(context_length) + " is out of range");
  require(sliding_window >= 0, "sliding window must not be negative");
  require(rms_eps > 0 && rms_eps < 1, "RMSNorm epsilon is out of range");
  require(rope.theta > 1, "RoPE base must be greater than 1");
  require(rope.factor > 0, "RoPE scaling factor must be positive");
  if (rope.scaling == RopeScaling::Llama3)
    require(rope.high_freq_factor > rope.low_freq_factor && rope.low_freq_factor > 0,
            "llama3 RoPE scaling needs high_freq_factor > low_freq_factor > 0");
}

void ModelConfig::apply(const RopeOverride& o) {
  if (o.theta) rope.theta = *o.theta;
  if (o.scaling) rope.scaling = *o.scaling;
  if (o.factor) rope.factor = *o.factor;
  if (o.original_context) rope.original_context = *o.original_context;
}

namespace {

// Typed access to config.json fields with errors that name the field.
class JsonFields {
 public:
  JsonFields(const json& j, const std::string& source) : j_(j), source_(source) {}
  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  int64_t integer(const char* key) const {
    if (!has(key)) throw Error(source_ + ": missing '" + key + "'");
    if (!j_[key].is_number_integer()) throw Error(source_ + ": '" + key + "' must be an integer");
    return j_[key].get<int64_t>();
  }
  int64_t integer(const char* key, int64_t def) const { return has(key) ? integer(key) : def; }
  double number(const char* key, double def) const {
    if (!has(key)) return def;
    if (!j_[key].is_number()) throw Error(source_ + ": '" + key + "' must be a number");
    return j_[key].get<double>();
  }
  bool boolean(const char* key, bool def) const {
    if (!has(key)) return def;
    if (!j_[key].is_boolean()) throw Error(source_ + ": '" + key + "' must be true or false");
    return j_[key].get<bool>();
  }

 private:
  const json& j_;
  const std::string& source_;
};

std::vector<int32_t> int_or_list(const json& v) {
  std::vector<int32_t> out;
  if (v.is_number_integer()) out.push_back(v.get<int32_t>());
  if (v.is_array())
    for (const auto& x : v)
      if (x.is_number_integer()) out.push_back(x.get<int32_t>());
  return out;
}

}  // namespace

ModelConfig config_from_hf(const json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": config is not a JSON object");
  JsonFields f(j, source);
  ModelConfig c;
  std::string type = j.value("model_type", "");
  if (type.empty() && j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty())
    type = j["architectures"][0].get<std::string>();
  if (type == "llama" || type == "LlamaForCausalLM") {
    c.arch = Arch::Llama;
  } else if (type == "mistral" || type == "MistralForCausalLM") {
    c.arch = Arch::Mistral;
  } else if (type == "qwen2" || type == "Qwen2ForCausalLM") {
    c.arch = Arch::Qwen2;
  } else {
    throw Error(source + ": model type '" + type + "' is not supported (llama, mistral, qwen2)");
  }
  c.vocab_size = f.integer("vocab_size");
  c.hidden = f.integer("hidden_size");
  c.ffn = f.integer("intermediate_size");
  c.n_layers = f.integer("num_hidden_layers");
  c.n_heads = f.integer("num_attention_heads");
  c.n_kv_heads = f.integer("num_key_value_heads", c.n_heads);
  c.head_dim = f.integer("head_dim", c.n_heads > 0 ? c.hidden / c.n_heads : 0);
  c.context_length = f.integer("max_position_embeddings", 2048);
  c.rms_eps = f.number("rms_norm_eps", 1e-6);
  c.tied_embeddings = f.boolean("tie_word_embeddings", false);
  c.attn_bias = c.arch == Arch::Qwen2 || f.boolean("attention_bias", false);
  if (c.arch == Arch::Mistral) c.sliding_window = f.integer("sliding_window", 0);
  if (c.arch == Arch::Qwen2 && f.boolean("use_sliding_window", false)) c.sliding_window = f.integer("sliding_window", 0);
  c.rope.theta = f.number("rope_theta", 10000.0);
  // transformers >= 4.56 may nest the RoPE settings under rope_parameters.
  const json* scaling = nullptr;
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) scaling = &j["rope_scaling"];
  if (!scaling && j.contains("rope_parameters") && j["rope_parameters"].is_object()) scaling = &j["rope_parameters"];
  if (scaling) {
    JsonFields s(*scaling, source);
    const std::string kind = scaling->value("rope_type", scaling->value("type", std::string("default")));
    c.rope.scaling = parse_rope_scaling(kind, source);
    c.rope.theta = s.number("rope_theta", c.rope.theta);
    c.rope.factor = s.number("factor", 1.0);
    c.rope.low_freq_factor = s.number("low_freq_factor", 1.0);
    c.rope.high_freq_factor = s.number("high_freq_factor", 4.0);
    c.rope.original_context = s.integer("original_max_position_embeddings", 0);
    c.rope.yarn_beta_fast = s.number("beta_fast", 32.0);
    c.rope.yarn_beta_slow = s.number("beta_slow", 1.0);
    if (s.has("attention_factor")) c.rope.attention_factor = s.number("attention_factor", 1.0);
  }
  if (j.contains("bos_token_id")) {
    const auto b = int_or_list(j["bos_token_id"]);
    if (!b.empty()) c.bos_id = b[0];
  }
  if (j.contains("eos_token_id")) c.eos_ids = int_or_list(j["eos_token_id"]);
  c.validate(source);
  return c;
}

ModelConfig config_from_gguf(const gguf::File& f) {
  const std::string arch = f.get_string("general.architecture").value_or("");
  ModelConfig c;
  if (arch == "llama") {
    c.arch = Arch::Llama;
  } else if (arch == "qwen2") {
    c.arch = Arch::Qwen2;
  } else {
    throw Error(f.path() + ": architecture '" + arch + "' is not supported (llama, qwen2)");
  }
  auto req = [&](const std::string& key) {
    auto v = f.get_int(arch + "." + key);
    if (!v) throw Error(f.path() + ": missing metadata key '" + arch + "." + key + "'");
    return *v;
  };
  c.hidden = req("embedding_length");
  c.ffn = req("feed_forward_length");
  c.n_layers = req("block_count");
  c.n_heads = req("attention.head_count");
  c.n_kv_heads = f.get_int(arch + ".attention.head_count_kv").value_or(c.n_heads);
  c.head_dim = f.get_int(arch + ".attention.key_length")
                   .value_or(f.get_int(arch + ".rope.dimension_count").value_or(c.n_heads ? c.hidden / c.n_heads : 0));
  c.context_length = req("context_length");
  c.rms_eps = f.get_float(arch + ".attention.layer_norm_rms_epsilon").value_or(1e-5);
  c.sliding_window = f.get_int(arch + ".attention.sliding_window").value_or(0);
  c.attn_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  c.rope.theta = f.get_float(arch + ".rope.freq_base").value_or(10000.0);
  c.rope.interleaved = c.arch == Arch::Llama;  // llama.cpp's convert permutes q/k rows for llama only
  if (auto s = f.get_string(arch + ".rope.scaling.type")) c.rope.scaling = parse_rope_scaling(*s, f.path());
  c.rope.factor = f.get_float(arch + ".rope.scaling.factor").value_or(1.0);
  c.rope.original_context = f.get_int(arch + ".rope.scaling.original_context_length").value_or(0);
  if (auto a = f.get_float(arch + ".rope.scaling.attn_factor")) c.rope.attention_factor = *a;
  if (auto b = f.get_float(arch + ".rope.scaling.yarn_beta_fast")) c.rope.yarn_beta_fast = *b;
  if (auto b = f.get_float(arch + ".rope.scaling.yarn_beta_slow")) c.rope.yarn_beta_slow = *b;
  if (c.rope.scaling == RopeScaling::None && c.rope.factor != 1.0) c.rope.factor = 1.0;
  if (auto v = f.get_int("tokenizer.ggml.bos_token_id")) c.bos_id = static_cast<int32_t>(*v);
  if (auto v = f.get_int("tokenizer.ggml.eos_token_id")) c.eos_ids.push_back(static_cast<int32_t>(*v));
  if (auto v = f.get_int("tokenizer.ggml.eot_token_id")) c.eos_ids.push_back(static_cast<int32_t>(*v));
  const auto& toks = f.find("tokenizer.ggml.tokens");
  c.vocab_size = f.get_int(arch + ".vocab_size").value_or(toks ? static_cast<int64_t>(toks->as_array("tokenizer.ggml.tokens").items.size()) : 0);
  if (c.vocab_size == 0) {
    if (const auto* e = f.find_tensor("token_embd.weight"); e && e->dims.size() == 2) c.vocab_size = e->dims[1];
  }
  c.validate(f.path());
  return c;
}

}  // namespace longqa
