#include "engine/gguf.h"

#include <bit>
#include <cstring>
#include <limits>
#include <sstream>

#include "util/error.h"

namespace longqa::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxDims = 4;
constexpr int kMaxArrayDepth = 4;

// A bounds-checked reader over the mapped header. Every read names what it was reading on failure.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, size_t size) : path_(path), data_(data), size_(size) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(path_ + ": " + what + " (at byte " + std::to_string(pos_) + ")");
  }

  template <typename T>
  T read(const char* what) {
    if (remaining() < sizeof(T)) fail(std::string("file truncated while reading ") + what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what) {
    const auto n = read<uint64_t>(what);
    if (n > remaining()) fail(std::string("string length ") + std::to_string(n) + " of " + what + " runs past the end of the file");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }

 private:
  const std::string& path_;
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    case ValueType::STRING: return 8;  // at least its length field
    case ValueType::ARRAY: return 12;  // at least its type and count
  }
  return 0;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::FLOAT64); }

Value read_value(Cursor& c, ValueType type, const std::string& key, int depth) {
  const char* k = key.c_str();
  switch (type) {
    case ValueType::UINT8: return {type, uint64_t{c.read<uint8_t>(k)}};
    case ValueType::INT8: return {type, int64_t{c.read<int8_t>(k)}};
    case ValueType::UINT16: return {type, uint64_t{c.read<uint16_t>(k)}};
    case ValueType::INT16: return {type, int64_t{c.read<int16_t>(k)}};
    case ValueType::UINT32: return {type, uint64_t{c.read<uint32_t>(k)}};
    case ValueType::INT32: return {type, int64_t{c.read<int32_t>(k)}};
    case ValueType::FLOAT32: return {type, double{c.read<float>(k)}};
    case ValueType::UINT64: return {type, c.read<uint64_t>(k)};
    case ValueType::INT64: return {type, c.read<int64_t>(k)};
    case ValueType::FLOAT64: return {type, c.read<double>(k)};
    case ValueType::BOOL: {
      const auto b = c.read<uint8_t>(k);
      if (b > 1) c.fail("key '" + key + "': bool value " + std::to_string(b) + " is neither 0 nor 1");
      return {type, b == 1};
    }
    case ValueType::STRING: return {type, c.read_string(k)};
    case ValueType::ARRAY: {
      if (depth >= kMaxArrayDepth) c.fail("key '" + key + "': arrays nested too deeply");
      const auto elem = c.read<uint32_t>(k);
      if (!valid_value_type(elem)) c.fail("key '" + key + "': unknown array element type " + std::to_string(elem));
      const auto n = c.read<uint64_t>(k);
      const auto et = static_cast<ValueType>(elem);
      if (n > c.remaining() / scalar_size(et))
        c.fail("key '" + key + "': array of " + std::to_string(n) + " elements cannot fit in the file");
      Array arr{et, {}};
      arr.items.reserve(static_cast<size_t>(n));
      for (uint64_t i = 0; i < n; ++i) arr.items.push_back(read_value(c, et, key, depth + 1));
      return {type, std::move(arr)};
    }
  }
  c.fail("key '" + key + "': unknown value type " + std::to_string(static_cast<uint32_t>(type)));
}

}  // namespace

const char* value_type_name(ValueType t) {
  static const char* const names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32", "float32",
                                      "bool",  "string", "array", "uint64", "int64",  "float64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(names) ? names[i] : "unknown";
}

const TypeTraits* type_traits(uint32_t type) {
  static const TypeTraits table[] = {
      {"F32", 1, 4},        {"F16", 1, 2},       {"Q4_0", 32, 18},     {"Q4_1", 32, 20},
      {nullptr, 0, 0},      {nullptr, 0, 0},     {"Q5_0", 32, 22},     {"Q5_1", 32, 24},
      {"Q8_0", 32, 34},     {"Q8_1", 32, 36},    {"Q2_K", 256, 84},    {"Q3_K", 256, 110},
      {"Q4_K", 256, 144},   {"Q5_K", 256, 176},  {"Q6_K", 256, 210},   {"Q8_K", 256, 292},
      {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74}, {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
      {"IQ4_NL", 32, 18},   {"IQ3_S", 256, 110}, {"IQ2_S", 256, 82},   {"IQ4_XS", 256, 136},
      {"I8", 1, 1},         {"I16", 1, 2},       {"I32", 1, 4},        {"I64", 1, 8},
      {"F64", 1, 8},        {"IQ1_M", 256, 56},  {"BF16", 1, 2},       {nullptr, 0, 0},
      {nullptr, 0, 0},      {nullptr, 0, 0},     {"TQ1_0", 256, 54},   {"TQ2_0", 256, 66},
      {nullptr, 0, 0},      {nullptr, 0, 0},     {nullptr, 0, 0},      {"MXFP4", 32, 17},
  };
  if (type >= std::size(table) || table[type].name == nullptr) return nullptr;
  return &table[type];
}

std::string type_name(TensorType t) {
  const TypeTraits* tr = type_traits(static_cast<uint32_t>(t));
  return tr ? tr->name : "type#" + std::to_string(static_cast<uint32_t>(t));
}

size_t row_bytes(TensorType t, int64_t n) {
  const TypeTraits* tr = type_traits(static_cast<uint32_t>(t));
  if (!tr) throw Error("unknown tensor type " + std::to_string(static_cast<uint32_t>(t)));
  if (n % tr->block_size != 0)
    throw Error("row of " + std::to_string(n) + " elements is not a whole number of " + tr->name + " blocks");
  return static_cast<size_t>(n / tr->block_size) * tr->block_bytes;
}

std::optional<kernels::WType> compute_type(TensorType t) {
  using W = kernels::WType;
  switch (t) {
    case TensorType::F32: return W::F32;
    case TensorType::F16: return W::F16;
    case TensorType::BF16: return W::BF16;
    case TensorType::Q8_0: return W::Q8_0;
    case TensorType::Q4_0: return W::Q4_0;
    case TensorType::Q4_K: return W::Q4_K;
    case TensorType::Q5_K: return W::Q5_K;
    case TensorType::Q6_K: return W::Q6_K;
    default: return std::nullopt;
  }
}

bool Value::is_integer() const {
  return std::holds_alternative<uint64_t>(data) || std::holds_alternative<int64_t>(data);
}

int64_t Value::as_int(std::string_view key) const {
  if (const auto* u = std::get_if<uint64_t>(&data)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw Error("metadata key '" + std::string(key) + "': value too large");
    return static_cast<int64_t>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&data)) return *i;
  throw Error("metadata key '" + std::string(key) + "' is " + value_type_name(type) + ", expected an integer");
}

double Value::as_float(std::string_view key) const {
  if (const auto* d = std::get_if<double>(&data)) return *d;
  if (is_integer()) return static_cast<double>(as_int(key));
  throw Error("metadata key '" + std::string(key) + "' is " + value_type_name(type) + ", expected a number");
}

bool Value::as_bool(std::string_view key) const {
  if (const auto* b = std::get_if<bool>(&data)) return *b;
  throw Error("metadata key '" + std::string(key) + "' is " + value_type_name(type) + ", expected a bool");
}

const std::string& Value::as_string(std::string_view key) const {
  if (const auto* s = std::get_if<std::string>(&data)) return *s;
  throw Error("metadata key '" + std::string(key) + "' is " + value_type_name(type) + ", expected a string");
}

const Array& Value::as_array(std::string_view key) const {
  if (const auto* a = std::get_if<Array>(&data)) return *a;
  throw Error("metadata key '" + std::string(key) + "' is " + value_type_name(type) + ", expected an array");
}

std::string Value::to_display(size_t max_items) const {
  std::ostringstream os;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          os << '"' << (v.size() > 60 ? v.substr(0, 60) + "..." : v) << '"';
        } else if constexpr (std::is_same_v<T, Array>) {
          os << "[" << value_type_name(v.elem_type) << " x " << v.items.size() << "]";
          for (size_t i = 0; i < v.items.size() && i < max_items; ++i) os << (i ? ", " : " ") << v.items[i].to_display(0);
          if (v.items.size() > max_items && max_items > 0) os << ", ...";
        } else if constexpr (std::is_same_v<T, bool>) {
          os << (v ? "true" : "false");
        } else {
          os << v;
        }
      },
      data);
  return os.str();
}

File::File(const std::string& path, FileResidency residency) : map_(path, residency) {
  Cursor c(path, map_.data(), map_.size());
  if (map_.size() < 4 || c.read<uint32_t>("magic") != kMagic) throw Error(path + ": not a GGUF file (bad magic)");
  version_ = c.read<uint32_t>("version");
  if (version_ == 1) throw Error(path + ": GGUF version 1 is obsolete and not supported; re-convert the model");
  if (version_ != 2 && version_ != 3) throw Error(path + ": unsupported GGUF version " + std::to_string(version_));
  const auto n_tensors = c.read<uint64_t>("tensor count");
  const auto n_kv = c.read<uint64_t>("metadata count");
  // Each key/value needs at least 8 + 1 + 4 + 1 bytes, each tensor entry at least 8 + 1 + 4 + 4 + 8.
  if (n_kv > c.remaining() / 14) c.fail("metadata count " + std::to_string(n_kv) + " cannot fit in the file");
  if (n_tensors > c.remaining() / 25) c.fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the file");

  metadata_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("metadata key");
    if (key.empty()) c.fail("empty metadata key");
    const auto type = c.read<uint32_t>("metadata value type");
    if (!valid_value_type(type)) c.fail("key '" + key + "': unknown value type " + std::to_string(type));
    Value v = read_value(c, static_cast<ValueType>(type), key, 0);
    if (!metadata_index_.emplace(key, metadata_.size()).second) c.fail("duplicate metadata key '" + key + "'");
    metadata_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = find("general.alignment")) {
    if (a->type != ValueType::UINT32) throw Error(path + ": general.alignment must be uint32");
    const auto al = a->as_int("general.alignment");
    if (al == 0 || !std::has_single_bit(static_cast<uint64_t>(al)))
      throw Error(path + ": general.alignment " + std::to_string(al) + " is not a power of two");
    alignment_ = static_cast<size_t>(al);
  }

  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.name = c.read_string("tensor name");
    const auto n_dims = c.read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      c.fail("tensor '" + t.name + "': " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    t.n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto ne = c.read<uint64_t>("tensor dimension");
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / static_cast<uint64_t>(t.n_elements))
        c.fail("tensor '" + t.name + "': dimension " + std::to_string(ne) + " is zero or too large");
      t.dims.push_back(static_cast<int64_t>(ne));
      t.n_elements *= static_cast<int64_t>(ne);
    }
    const auto type = c.read<uint32_t>("tensor type");
    const TypeTraits* tr = type_traits(type);
    if (!tr) c.fail("tensor '" + t.name + "': unknown tensor type " + std::to_string(type));
    t.type = static_cast<TensorType>(type);
    if (t.dims[0] % tr->block_size != 0)
      c.fail("tensor '" + t.name + "': row of " + std::to_string(t.dims[0]) + " is not a multiple of the " + tr->name +
             " block size " + std::to_string(tr->block_size));
    const uint64_t blocks = static_cast<uint64_t>(t.n_elements / tr->block_size);
    if (blocks > std::numeric_limits<uint64_t>::max() / tr->block_bytes) c.fail("tensor '" + t.name + "': size overflows");
    t.nbytes = static_cast<size_t>(blocks * tr->block_bytes);
    t.offset = c.read<uint64_t>("tensor offset");
    if (t.offset % alignment_ != 0)
      c.fail("tensor '" + t.name + "': offset " + std::to_string(t.offset) + " is not aligned to " + std::to_string(alignment_));
    if (!tensor_index_.emplace(t.name, tensors_.size()).second) c.fail("duplicate tensor name '" + t.name + "'");
    tensors_.push_back(std::move(t));
  }

  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (data_offset_ > map_.size() && !tensors_.empty()) throw Error(path + ": file truncated before the tensor data");
  const size_t data_size = map_.size() > data_offset_ ? map_.size() - data_offset_ : 0;
  for (auto& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      throw Error(path + ": tensor '" + t.name + "' (" + std::to_string(t.nbytes) + " bytes at offset " +
                  std::to_string(t.offset) + ") runs past the end of the file; the file is truncated or corrupt");
    t.data = map_.data() + data_offset_ + t.offset;
  }
}

const Value* File::find(std::string_view key) const {
  auto it = metadata_index_.find(std::string(key));
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

const Value& File::get(std::string_view key) const {
  const Value* v = find(key);
  if (!v) throw Error(path() + ": missing metadata key '" + std::string(key) + "'");
  return *v;
}

// Reads a metadata value through `read`, naming this file in any type error.
template <typename Read>
auto File::read_key(std::string_view key, Read read) const -> std::optional<decltype(read(std::declval<const Value&>()))> {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  try {
    return read(*v);
  } catch (const Error& e) {
    throw Error(path() + ": " + e.what());
  }
}

std::optional<int64_t> File::get_int(std::string_view key) const {
  return read_key(key, [&](const Value& v) { return v.as_int(key); });
}

std::optional<double> File::get_float(std::string_view key) const {
  return read_key(key, [&](const Value& v) { return v.as_float(key); });
}

std::optional<std::string> File::get_string(std::string_view key) const {
  return read_key(key, [&](const Value& v) { return v.as_string(key); });
}

std::vector<std::string> File::get_strings(std::string_view key) const {
  return read_key(key, [&](const Value& v) {
           std::vector<std::string> out;
           for (const auto& item : v.as_array(key).items) out.push_back(item.as_string(key));
           return out;
         }).value_or(std::vector<std::string>{});
}

std::vector<float> File::get_floats(std::string_view key) const {
  return read_key(key, [&](const Value& v) {
           std::vector<float> out;
           for (const auto& item : v.as_array(key).items) out.push_back(static_cast<float>(item.as_float(key)));
           return out;
         }).value_or(std::vector<float>{});
}

std::vector<int32_t> File::get_ints(std::string_view key) const {
  return read_key(key, [&](const Value& v) {
           std::vector<int32_t> out;
           for (const auto& item : v.as_array(key).items) {
             const int64_t x = item.as_int(key);
             if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max())
               throw Error("metadata key '" + std::string(key) + "': element out of int32 range");
             out.push_back(static_cast<int32_t>(x));
           }
           return out;
         }).value_or(std::vector<int32_t>{});
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace longqa::gguf
