#include "engine/random_model.h"

#include <cmath>
#include <cstring>

#include "engine/convert.h"
#include "engine/gguf_writer.h"
#include "engine/tokenizer_impl.h"
#include "util/error.h"
#include "util/random.h"

namespace longqa {
using gguf::TensorType;
using gguf::Value;
using gguf::ValueType;

namespace {

const std::vector<ModelShape>& shapes() {
  static const std::vector<ModelShape> all = {
      {"tiny", 256, 4, 8, 2, 768, 512, 131072, 1.5e8, false},
      {"llama3-1b", 2048, 16, 32, 8, 8192, 128256, 131072, 5e5, true},
      {"llama3-8b", 4096, 32, 32, 8, 14336, 128256, 131072, 1.5e8, false},
  };
  return all;
}

// Counter-based: every row draws from its own stream, so tensors fill in parallel and the same seed
// always gives the same file.
void random_row(uint64_t stream, float* out, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = mix64(stream + static_cast<uint64_t>(i));
    out[i] = scale * (static_cast<float>(r >> 40) / static_cast<float>(1 << 24) * 2.0f - 1.0f);
  }
}

Value strings(std::vector<std::string> v) {
  std::vector<Value> items;
  items.reserve(v.size());
  for (auto& s : v) items.push_back(Value::str(std::move(s)));
  return Value::array(ValueType::STRING, std::move(items));
}

}  // namespace

std::vector<std::string> model_shape_names() {
  std::vector<std::string> names;
  for (const auto& s : shapes()) names.push_back(s.name);
  return names;
}

const ModelShape& model_shape(const std::string& name) {
  std::string known;
  for (const auto& s : shapes()) {
    if (s.name == name) return s;
    known += (known.empty() ? "" : ", ") + s.name;
  }
  throw Error("unknown model shape '" + name + "' (" + known + ")");
}

void write_random_model(const ModelShape& s, QuantMix type, const std::string& out_path, uint64_t seed, int threads) {
  const int64_t head_dim = s.hidden / s.heads;
  ModelConfig c;
  c.vocab_size = s.vocab;
  c.hidden = s.hidden;
  c.ffn = s.ffn;
  c.n_layers = s.layers;
  c.n_heads = s.heads;
  c.n_kv_heads = s.kv_heads;
  c.head_dim = head_dim;
  c.context_length = s.context;
  c.rope.theta = s.rope_theta;
  gguf::Writer w;
  write_hparams(w, c, "random " + s.name);

  // A byte-level vocabulary: the 256 byte tokens, fillers, and the Llama-3 special tokens.
  const int32_t bos = s.vocab >= 128256 ? 128000 : static_cast<int32_t>(s.vocab - 2);
  const auto byte_chars = byte_level_chars();
  std::vector<std::string> tokens;
  std::vector<Value> types;
  for (int64_t i = 0; i < s.vocab; ++i) {
    std::string t;
    int32_t kind = 1;
    if (i < 256) {
      t = byte_chars[static_cast<size_t>(i)];
    } else if (i == bos) {
      t = "<|begin_of_text|>", kind = 3;
    } else if (i == bos + 1) {
      t = "<|end_of_text|>", kind = 3;
    } else if (i == bos + 9 && s.vocab >= 128256) {
      t = "<|eot_id|>", kind = 3;
    } else {
      t = (i > bos ? "<|reserved_special_token_" : "[filler") + std::to_string(i) + (i > bos ? "|>" : "]");
      if (i > bos) kind = 3;
    }
    tokens.push_back(std::move(t));
    types.push_back(Value::i32(kind));
  }
  w.set("tokenizer.ggml.model", Value::str("gpt2"));
  w.set("tokenizer.ggml.pre", Value::str("llama-bpe"));
  w.set("tokenizer.ggml.tokens", strings(std::move(tokens)));
  w.set("tokenizer.ggml.token_type", Value::array(ValueType::INT32, std::move(types)));
  w.set("tokenizer.ggml.merges", Value::array(ValueType::STRING, {}));
  w.set("tokenizer.ggml.bos_token_id", Value::u32(static_cast<uint32_t>(bos)));
  w.set("tokenizer.ggml.eos_token_id", Value::u32(static_cast<uint32_t>(bos + 1)));

  uint64_t tensor_index = 0;
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols, int layer) {
    const TensorType t = quant_type_for(type, name, cols, layer, static_cast<int>(s.layers), s.tied);
    const size_t row_size = gguf::row_bytes(t, cols);
    const uint64_t stream = mix64(seed ^ mix64(++tensor_index)) << 24;
    const float scale = 1.0f / std::sqrt(static_cast<float>(cols));  // keeps activations O(1) through the layers
    w.add_tensor(name, t, {cols, rows}, [=] {
      std::vector<uint8_t> out(row_size * static_cast<size_t>(rows));
#pragma omp parallel num_threads(threads)
      {
        std::vector<float> row(static_cast<size_t>(cols));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
          random_row(stream + static_cast<uint64_t>(r) * static_cast<uint64_t>(cols), row.data(), cols, scale);
          encode_row(t, row.data(), out.data() + static_cast<size_t>(r) * row_size, cols);
        }
      }
      return out;
    });
  };
  auto ones = [&](const std::string& name, int64_t n) {
    w.add_tensor(name, TensorType::F32, {n}, [n] {
      std::vector<float> v(static_cast<size_t>(n), 1.0f);
      std::vector<uint8_t> out(v.size() * 4);
      std::memcpy(out.data(), v.data(), out.size());
      return out;
    });
  };
  matrix("token_embd.weight", s.vocab, s.hidden, -1);
  ones("output_norm.weight", s.hidden);
  if (!s.tied) matrix("output.weight", s.vocab, s.hidden, -1);
  for (int i = 0; i < s.layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    ones(p + "attn_norm.weight", s.hidden);
    matrix(p + "attn_q.weight", s.heads * head_dim, s.hidden, i);
    matrix(p + "attn_k.weight", s.kv_heads * head_dim, s.hidden, i);
    matrix(p + "attn_v.weight", s.kv_heads * head_dim, s.hidden, i);
    matrix(p + "attn_output.weight", s.hidden, s.heads * head_dim, i);
    ones(p + "ffn_norm.weight", s.hidden);
    matrix(p + "ffn_gate.weight", s.ffn, s.hidden, i);
    matrix(p + "ffn_up.weight", s.ffn, s.hidden, i);
    matrix(p + "ffn_down.weight", s.hidden, s.ffn, i);
  }
  w.set("general.file_type", Value::u32(gguf_file_type(type)));
  w.write(out_path);
}

}  // namespace longqa
