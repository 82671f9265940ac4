#include "engine/quantize.h"

#include <regex>

#include "engine/gguf_writer.h"
#include "kernels/cpu/dot.h"
#include "util/error.h"

namespace longqa {
using gguf::TensorType;
namespace k = kernels;

QuantMix parse_quant_mix(const std::string& s) {
  if (s == "q8_0") return QuantMix::Q8_0;
  if (s == "q4_0") return QuantMix::Q4_0;
  if (s == "q4_k_m") return QuantMix::Q4_K_M;
  if (s == "q5_k_m") return QuantMix::Q5_K_M;
  if (s == "q6_k") return QuantMix::Q6_K;
  if (s == "f16") return QuantMix::F16;
  if (s == "bf16") return QuantMix::BF16;
  throw Error("quantization type '" + s + "' is not supported (q8_0, q4_0, q4_k_m, q5_k_m, q6_k, f16, bf16)");
}

namespace {

}  // namespace

uint32_t gguf_file_type(QuantMix m) {
  switch (m) {
    case QuantMix::Q8_0: return 7;
    case QuantMix::Q4_0: return 2;
    case QuantMix::Q4_K_M: return 15;
    case QuantMix::Q5_K_M: return 17;
    case QuantMix::Q6_K: return 18;
    case QuantMix::F16: return 1;
    case QuantMix::BF16: return 32;
  }
  return 0;
}

namespace {

TensorType base_type(QuantMix m) {
  switch (m) {
    case QuantMix::Q8_0: return TensorType::Q8_0;
    case QuantMix::Q4_0: return TensorType::Q4_0;
    case QuantMix::Q4_K_M: return TensorType::Q4_K;
    case QuantMix::Q5_K_M: return TensorType::Q5_K;
    case QuantMix::Q6_K: return TensorType::Q6_K;
    case QuantMix::F16: return TensorType::F16;
    case QuantMix::BF16: return TensorType::BF16;
  }
  return TensorType::F32;
}

bool use_more_bits(int layer, int n_layers) {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

}  // namespace

void encode_row(TensorType type, const float* x, uint8_t* out, int64_t n) {
  const auto t = gguf::compute_type(type);
  if (!t) throw Error("cannot encode tensors as " + gguf::type_name(type));
  k::from_f32(*t, x, out, n);
}

TensorType quant_type_for(QuantMix mix, const std::string& name, int64_t cols, int layer, int n_layers, bool tied) {
  TensorType t = base_type(mix);
  const bool is_output = name == "output.weight" || (tied && name == "token_embd.weight");
  const bool k_mix = mix == QuantMix::Q4_K_M || mix == QuantMix::Q5_K_M;
  if (is_output && mix != QuantMix::Q8_0 && mix != QuantMix::F16 && mix != QuantMix::BF16) t = TensorType::Q6_K;
  if (k_mix && layer >= 0 && use_more_bits(layer, n_layers) &&
      (name.ends_with("attn_v.weight") || name.ends_with("ffn_down.weight")))
    t = TensorType::Q6_K;
  // Rows that are no whole number of blocks fall back to a type whose blocks fit (llama.cpp does the same,
  // to Q5_0/Q5_1/Q8_0; longqa uses Q8_0 throughout, or F16 when even 32 does not divide the row).
  const gguf::TypeTraits* tr = gguf::type_traits(static_cast<uint32_t>(t));
  if (cols % tr->block_size != 0) t = cols % 32 == 0 ? TensorType::Q8_0 : TensorType::F16;
  return t;
}

void quantize_gguf(const std::string& in_path, const std::string& out_path, QuantMix mix, int threads) {
  if (in_path == out_path) throw Error("quantize: the output must be a different file than the input");
  const gguf::File in(in_path);
  const std::string arch = in.get_string("general.architecture").value_or("");
  const int n_layers = static_cast<int>(in.get_int(arch + ".block_count").value_or(0));
  const bool tied = in.find_tensor("output.weight") == nullptr;
  gguf::Writer w(in.alignment());
  for (const auto& [key, value] : in.metadata())
    if (key != "general.alignment") w.set(key, value);
  w.set("general.file_type", gguf::Value::u32(gguf_file_type(mix)));
  w.set("general.quantization_version", gguf::Value::u32(2));

  const std::regex layer_re(R"(^blk\.(\d+)\.)");
  for (const gguf::TensorInfo& t : in.tensors()) {
    // Only float matrices are re-encoded; vectors, and anything already quantized, pass through.
    const bool is_float = t.type == TensorType::F32 || t.type == TensorType::F16 || t.type == TensorType::BF16;
    if (t.dims.size() != 2 || !is_float) {
      w.add_tensor(t.name, t.type, t.dims, std::span<const uint8_t>(t.data, t.nbytes));
      continue;
    }
    std::smatch m;
    const int layer = std::regex_search(t.name, m, layer_re) ? std::stoi(m[1]) : -1;
    const TensorType type = quant_type_for(mix, t.name, t.dims[0], layer, n_layers, tied);
    const int64_t cols = t.dims[0], rows = t.dims[1];
    const k::WType from = *gguf::compute_type(t.type);
    const size_t src_row = k::row_bytes(from, cols), dst_row = gguf::row_bytes(type, cols);
    const uint8_t* src = t.data;
    w.add_tensor(t.name, type, t.dims, [=] {
      std::vector<uint8_t> out(dst_row * static_cast<size_t>(rows));
#pragma omp parallel num_threads(threads)
      {
        std::vector<float> row(static_cast<size_t>(cols));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
          k::to_f32(from, src + static_cast<size_t>(r) * src_row, row.data(), cols);
          encode_row(type, row.data(), out.data() + static_cast<size_t>(r) * dst_row, cols);
        }
      }
      return out;
    });
  }
  w.write(out_path);
}

}  // namespace longqa
