// Safetensors files and Hugging Face model directories (`model.safetensors`, or shards listed in
// `model.safetensors.index.json`). Headers are validated against the file before use: dtypes, shapes,
// offsets inside the data buffer, no overlaps past the end. Tensor data is never copied out of the
// shards' MappedFile.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "util/mapped_file.h"

namespace longqa {

enum class DType { F32, F16, BF16 };
const char* dtype_name(DType t);
size_t dtype_size(DType t);

struct SafeTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // row-major (PyTorch order): shape.back() is contiguous
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // the shard it lives in, for error messages
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path, FileResidency residency = FileResidency::Mapped);
  const std::string& path() const { return map_.path(); }
  const std::vector<SafeTensor>& tensors() const { return tensors_; }

 private:
  MappedFile map_;
  std::vector<SafeTensor> tensors_;
};

// All tensors of a model directory, by name. Owns the shards' bytes.
class SafetensorsModel {
 public:
  explicit SafetensorsModel(const std::string& dir, FileResidency residency = FileResidency::Mapped);
  const SafeTensor* find(std::string_view name) const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::unordered_map<std::string, const SafeTensor*> index_;
};

}  // namespace longqa
