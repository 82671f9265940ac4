// GGUF v2/v3 files: the metadata and tensor table of a file, validated on open.
// Every length, count, type and offset is checked against the file before it is used, so a malformed
// or hostile file ends in one longqa::Error naming the file and the fault. Tensor data stays where
// the MappedFile holds it (mapped by default, or read into huge pages for a model's weights); a File
// is immutable after construction and safe to read from many threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "kernels/cpu/dot.h"
#include "util/mapped_file.h"

namespace longqa::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* value_type_name(ValueType t);

// ggml tensor types as numbered in GGUF files. Every public type is named so that a file using one
// this build cannot compute is refused by name, not as "unknown".
enum class TensorType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9, Q2_K = 10, Q3_K = 11,
  Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19,
  IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28,
  IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct TypeTraits {
  const char* name;
  int64_t block_size;  // elements per block
  size_t block_bytes;  // bytes per block
};
// nullptr for a number that is no known ggml type.
const TypeTraits* type_traits(uint32_t type);
std::string type_name(TensorType t);
// Bytes of a row of `n` elements; throws when n is not a whole number of blocks.
size_t row_bytes(TensorType t, int64_t n);
// The kernels' type for a tensor type this build computes with; nullopt for the others.
std::optional<kernels::WType> compute_type(TensorType t);

struct Value;
struct Array {
  ValueType elem_type = ValueType::UINT8;
  std::vector<Value> items;
};
struct Value {
  ValueType type = ValueType::UINT8;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> data;

  static Value u32(uint32_t v) { return {ValueType::UINT32, uint64_t{v}}; }
  static Value i32(int32_t v) { return {ValueType::INT32, int64_t{v}}; }
  static Value u64(uint64_t v) { return {ValueType::UINT64, v}; }
  static Value f32(float v) { return {ValueType::FLOAT32, double{v}}; }
  static Value boolean(bool v) { return {ValueType::BOOL, v}; }
  static Value str(std::string v) { return {ValueType::STRING, std::move(v)}; }
  static Value array(ValueType elem, std::vector<Value> items) {
    return {ValueType::ARRAY, Array{elem, std::move(items)}};
  }

  bool is_integer() const;
  bool is_float() const { return type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }
  int64_t as_int(std::string_view key) const;    // throws unless an integer that fits int64
  double as_float(std::string_view key) const;   // integers and floats
  bool as_bool(std::string_view key) const;
  const std::string& as_string(std::string_view key) const;
  const Array& as_array(std::string_view key) const;
  std::string to_display(size_t max_items = 8) const;  // short human-readable form for `info`
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the contiguous (fastest) dimension
  TensorType type = TensorType::F32;
  uint64_t offset = 0;        // from the start of the data section
  size_t nbytes = 0;
  int64_t n_elements = 0;
  const uint8_t* data = nullptr;
};

class File {
 public:
  explicit File(const std::string& path, FileResidency residency = FileResidency::Mapped);

  const std::string& path() const { return map_.path(); }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }

  const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
  const Value* find(std::string_view key) const;
  const Value& get(std::string_view key) const;  // throws naming the missing key

  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::vector<std::string> get_strings(std::string_view key) const;  // empty when absent
  std::vector<float> get_floats(std::string_view key) const;         // empty when absent
  std::vector<int32_t> get_ints(std::string_view key) const;         // empty when absent

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // The file's bytes, writable while `edit` runs (see MappedFile::edit): tensor data pointers stay valid.
  void edit(const std::function<void(std::span<uint8_t>)>& edit) { map_.edit(edit); }
  const TensorInfo* find_tensor(std::string_view name) const;

 private:
  template <typename Read>
  auto read_key(std::string_view key, Read read) const -> std::optional<decltype(read(std::declval<const Value&>()))>;

  MappedFile map_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::unordered_map<std::string, size_t> metadata_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace longqa::gguf
