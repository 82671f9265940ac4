#include "engine/convert.h"

#include <cstring>
#include <filesystem>

#include "engine/gguf_writer.h"
#include "engine/model.h"
#include "engine/tokenizer_impl.h"
#include "util/error.h"
#include "util/fp16.h"

namespace longqa {
namespace fs = std::filesystem;
using gguf::TensorType;
using gguf::Value;
using gguf::ValueType;

ConvertType parse_convert_type(const std::string& s) {
  if (s == "f32") return ConvertType::F32;
  if (s == "f16") return ConvertType::F16;
  if (s == "bf16") return ConvertType::BF16;
  throw Error("output type '" + s + "' is not supported (f32, f16, bf16)");
}

namespace {

// Rows of a q or k projection reordered from HF's half-split RoPE layout to GGUF's interleaved one:
// within each head, row i of the first half goes to 2i and row i of the second half to 2i + 1.
std::vector<float> permute_rows(const std::vector<float>& w, int64_t n_heads, int64_t head_dim, int64_t cols) {
  std::vector<float> out(w.size());
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < head_dim; ++i) {
      const int64_t src = h * head_dim + i;
      const int64_t dst = h * head_dim + (i < half ? 2 * i : 2 * (i - half) + 1);
      std::memcpy(&out[static_cast<size_t>(dst * cols)], &w[static_cast<size_t>(src * cols)], static_cast<size_t>(cols) * sizeof(float));
    }
  return out;
}

std::vector<float> to_f32(const kernels::MatrixView& m) {
  std::vector<float> v(static_cast<size_t>(m.rows * m.cols));
  kernels::to_f32(m, v.data());
  return v;
}

std::vector<uint8_t> encode(const std::vector<float>& v, TensorType type) {
  std::vector<uint8_t> out(v.size() * (type == TensorType::F32 ? 4 : 2));
  if (type == TensorType::F32) {
    std::memcpy(out.data(), v.data(), out.size());
  } else {
    auto* p = reinterpret_cast<uint16_t*>(out.data());
    for (size_t i = 0; i < v.size(); ++i) p[i] = type == TensorType::F16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
  }
  return out;
}

Value strings(const std::vector<std::string>& v) {
  std::vector<Value> items;
  items.reserve(v.size());
  for (const auto& s : v) items.push_back(Value::str(s));
  return Value::array(ValueType::STRING, std::move(items));
}

}  // namespace

void write_tokenizer(gguf::Writer& w, const std::string& path, const ModelConfig& c) {
  TokenizerSpec spec = tokenizer_spec_from_json_file(path);
  if (spec.kind != TokenizerSpec::Kind::ByteLevelBpe)
    throw Error(path + ": only byte-level BPE tokenizers can be converted (SentencePiece ones need tokenizer.model scores)");
  const std::string pre = gguf_pre_name(spec.pattern);
  if (pre.empty()) throw Error(path + ": the pre-tokenizer regex is none of the known ones (llama-bpe, qwen2, gpt-2)");
  if (static_cast<int64_t>(spec.vocab.size()) > c.vocab_size) throw Error(path + ": more tokens than the model has embeddings");
  // GGUF vocabularies are dense and match the embedding rows: fill holes as llama.cpp does.
  spec.vocab.resize(static_cast<size_t>(c.vocab_size));
  std::vector<Value> types(spec.vocab.size(), Value::i32(1));
  for (size_t i = 0; i < spec.vocab.size(); ++i)
    if (spec.vocab[i].empty()) {
      spec.vocab[i] = "[PAD" + std::to_string(i) + "]";
      types[i] = Value::i32(5);
    }
  for (const auto& a : spec.added) types[static_cast<size_t>(a.id)] = Value::i32(a.special ? 3 : 4);
  std::vector<std::string> merges;
  merges.reserve(spec.merges.size());
  for (const auto& [a, b] : spec.merges) merges.push_back(a + " " + b);
  w.set("tokenizer.ggml.model", Value::str("gpt2"));
  w.set("tokenizer.ggml.pre", Value::str(pre));
  w.set("tokenizer.ggml.tokens", strings(spec.vocab));
  w.set("tokenizer.ggml.token_type", Value::array(ValueType::INT32, std::move(types)));
  w.set("tokenizer.ggml.merges", strings(merges));
  if (c.bos_id >= 0) w.set("tokenizer.ggml.bos_token_id", Value::u32(static_cast<uint32_t>(c.bos_id)));
  if (!c.eos_ids.empty()) w.set("tokenizer.ggml.eos_token_id", Value::u32(static_cast<uint32_t>(c.eos_ids[0])));
}

void write_hparams(gguf::Writer& w, const ModelConfig& c, const std::string& name) {
  const std::string arch = c.arch == Arch::Qwen2 ? "qwen2" : "llama";
  w.set("general.architecture", Value::str(arch));
  w.set("general.name", Value::str(name));
  auto u32 = [&](const std::string& key, int64_t v) { w.set(arch + "." + key, Value::u32(static_cast<uint32_t>(v))); };
  u32("context_length", c.context_length);
  u32("embedding_length", c.hidden);
  u32("block_count", c.n_layers);
  u32("feed_forward_length", c.ffn);
  u32("attention.head_count", c.n_heads);
  u32("attention.head_count_kv", c.n_kv_heads);
  u32("rope.dimension_count", c.head_dim);
  u32("vocab_size", c.vocab_size);
  if (c.head_dim * c.n_heads != c.hidden) {
    u32("attention.key_length", c.head_dim);
    u32("attention.value_length", c.head_dim);
  }
  if (c.sliding_window > 0) u32("attention.sliding_window", c.sliding_window);
  w.set(arch + ".rope.freq_base", Value::f32(static_cast<float>(c.rope.theta)));
  w.set(arch + ".attention.layer_norm_rms_epsilon", Value::f32(static_cast<float>(c.rms_eps)));
  if (c.rope.scaling == RopeScaling::Linear || c.rope.scaling == RopeScaling::Yarn) {
    w.set(arch + ".rope.scaling.type", Value::str(rope_scaling_name(c.rope.scaling)));
    w.set(arch + ".rope.scaling.factor", Value::f32(static_cast<float>(c.rope.factor)));
    if (c.rope.original_context > 0) u32("rope.scaling.original_context_length", c.rope.original_context);
    if (c.rope.attention_factor) w.set(arch + ".rope.scaling.attn_factor", Value::f32(static_cast<float>(*c.rope.attention_factor)));
  }
}

void convert_hf_to_gguf(const std::string& hf_dir, const std::string& out_path, ConvertType type) {
  if (!fs::is_directory(hf_dir)) throw Error(hf_dir + ": not an HF model directory");
  const auto model = Model::load(hf_dir);
  const ModelConfig& c = model->config();
  const std::string arch = c.arch == Arch::Qwen2 ? "qwen2" : "llama";
  const TensorType wtype = type == ConvertType::F32 ? TensorType::F32 : type == ConvertType::F16 ? TensorType::F16 : TensorType::BF16;

  gguf::Writer w;
  write_hparams(w, c, fs::path(hf_dir).filename().string());
  w.set("general.file_type", Value::u32(type == ConvertType::F32 ? 0 : type == ConvertType::F16 ? 1 : 32));
  if (c.rope.scaling == RopeScaling::Llama3) {
    RopeConfig plain = c.rope;
    plain.scaling = RopeScaling::None;
    const RopeTable base = rope_table(plain, c.head_dim, c.context_length);
    std::vector<float> factors(base.inv_freq.size());
    for (size_t i = 0; i < factors.size(); ++i) factors[i] = base.inv_freq[i] / model->rope().inv_freq[i];
    w.add_tensor("rope_freqs.weight", TensorType::F32, {static_cast<int64_t>(factors.size())},
                 [factors] { return encode(factors, TensorType::F32); });
  }
  write_tokenizer(w, (fs::path(hf_dir) / "tokenizer.json").string(), c);

  const Weights& wt = model->weights();
  const bool permute = arch == "llama";
  // Tensors are converted while the file is written, one at a time; `model` outlives w.write().
  const int64_t head_dim = c.head_dim;
  auto matrix = [&](const std::string& name, const kernels::MatrixView& m, int64_t permute_heads) {
    w.add_tensor(name, wtype, {m.cols, m.rows}, [=] {
      std::vector<float> v = to_f32(m);
      if (permute && permute_heads > 0) v = permute_rows(v, permute_heads, head_dim, m.cols);
      return encode(v, wtype);
    });
  };
  // Norms and biases stay F32, as llama.cpp keeps 1-D tensors; q/k biases follow their rows' order.
  auto vec = [&](const std::string& name, const std::vector<float>& v, int64_t permute_heads = 0) {
    w.add_tensor(name, TensorType::F32, {static_cast<int64_t>(v.size())}, [=, &v] {
      return encode(permute && permute_heads > 0 ? permute_rows(v, permute_heads, head_dim, 1) : v, TensorType::F32);
    });
  };
  matrix("token_embd.weight", wt.embedding, 0);
  vec("output_norm.weight", wt.output_norm);
  if (!c.tied_embeddings) matrix("output.weight", wt.output, 0);
  for (size_t i = 0; i < wt.layers.size(); ++i) {
    const LayerWeights& l = wt.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    vec(p + "attn_norm.weight", l.attn_norm);
    matrix(p + "attn_q.weight", l.wq, c.n_heads);
    matrix(p + "attn_k.weight", l.wk, c.n_kv_heads);
    matrix(p + "attn_v.weight", l.wv, 0);
    matrix(p + "attn_output.weight", l.wo, 0);
    if (c.attn_bias) {
      vec(p + "attn_q.bias", l.q_bias, c.n_heads);
      vec(p + "attn_k.bias", l.k_bias, c.n_kv_heads);
      vec(p + "attn_v.bias", l.v_bias);
    }
    vec(p + "ffn_norm.weight", l.ffn_norm);
    matrix(p + "ffn_gate.weight", l.w_gate, 0);
    matrix(p + "ffn_up.weight", l.w_up, 0);
    matrix(p + "ffn_down.weight", l.w_down, 0);
  }
  w.write(out_path);
}

}  // namespace longqa
