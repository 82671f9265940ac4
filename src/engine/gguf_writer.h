// gguf::Writer — builds a GGUF v3 file from metadata and tensors. Tensor data is borrowed (the caller
// keeps it alive until write() returns) or produced on demand while writing, so converting a large
// model holds one tensor in memory at a time. write() goes to a temporary file that is renamed into
// place only when complete, so an interrupted write never leaves a half file.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/gguf.h"

namespace longqa::gguf {

class Writer {
 public:
  explicit Writer(size_t alignment = 32) : alignment_(alignment) {}

  void set(std::string key, Value value);
  void add_tensor(std::string name, TensorType type, std::vector<int64_t> dims, std::span<const uint8_t> data);
  // produce() is called once, during write(), and must return exactly the tensor's bytes.
  using Producer = std::function<std::vector<uint8_t>()>;
  void add_tensor(std::string name, TensorType type, std::vector<int64_t> dims, Producer produce);

  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    TensorType type;
    std::vector<int64_t> dims;
    size_t nbytes;
    std::span<const uint8_t> data;  // borrowed, or empty when produce is set
    Producer produce;
  };
  size_t alignment_;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace longqa::gguf
