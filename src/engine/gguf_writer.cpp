#include "engine/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "util/error.h"

namespace longqa::gguf {
namespace {

class Output {
 public:
  explicit Output(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "wb")) {
    if (!f_) throw Error(path + ": cannot create: " + std::strerror(errno));
  }
  ~Output() {
    if (f_) std::fclose(f_);
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  void bytes(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) throw Error(path_ + ": write failed: " + std::strerror(errno));
    pos_ += n;
  }
  template <typename T>
  void pod(T v) {
    bytes(&v, sizeof v);
  }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(size_t alignment) {
    static const uint8_t zeros[256] = {};
    while (pos_ % alignment) bytes(zeros, std::min(alignment - pos_ % alignment, sizeof zeros));
  }
  void close() {
    const bool ok = std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
    const bool closed = std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok || !closed) throw Error(path_ + ": write failed: " + std::strerror(errno));
  }
  size_t pos() const { return pos_; }

 private:
  std::string path_;
  FILE* f_;
  size_t pos_ = 0;
};

void write_value(Output& out, const Value& v, ValueType type) {
  switch (type) {
    case ValueType::UINT8: out.pod<uint8_t>(static_cast<uint8_t>(std::get<uint64_t>(v.data))); break;
    case ValueType::INT8: out.pod<int8_t>(static_cast<int8_t>(std::get<int64_t>(v.data))); break;
    case ValueType::UINT16: out.pod<uint16_t>(static_cast<uint16_t>(std::get<uint64_t>(v.data))); break;
    case ValueType::INT16: out.pod<int16_t>(static_cast<int16_t>(std::get<int64_t>(v.data))); break;
    case ValueType::UINT32: out.pod<uint32_t>(static_cast<uint32_t>(std::get<uint64_t>(v.data))); break;
    case ValueType::INT32: out.pod<int32_t>(static_cast<int32_t>(std::get<int64_t>(v.data))); break;
    case ValueType::FLOAT32: out.pod<float>(static_cast<float>(std::get<double>(v.data))); break;
    case ValueType::BOOL: out.pod<uint8_t>(std::get<bool>(v.data) ? 1 : 0); break;
    case ValueType::STRING: out.str(std::get<std::string>(v.data)); break;
    case ValueType::UINT64: out.pod<uint64_t>(std::get<uint64_t>(v.data)); break;
    case ValueType::INT64: out.pod<int64_t>(std::get<int64_t>(v.data)); break;
    case ValueType::FLOAT64: out.pod<double>(std::get<double>(v.data)); break;
    case ValueType::ARRAY: {
      const Array& a = std::get<Array>(v.data);
      out.pod<uint32_t>(static_cast<uint32_t>(a.elem_type));
      out.pod<uint64_t>(a.items.size());
      for (const Value& item : a.items) {
        if (item.type != a.elem_type) throw Error("gguf writer: array element type mismatch");
        write_value(out, item, a.elem_type);
      }
      break;
    }
  }
}

}  // namespace

void Writer::set(std::string key, Value value) {
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(std::move(key), std::move(value));
}

namespace {
size_t tensor_bytes(const std::string& name, TensorType type, const std::vector<int64_t>& dims) {
  if (dims.empty() || dims.size() > 4) throw Error("gguf writer: tensor '" + name + "' needs 1 to 4 dimensions");
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d <= 0) throw Error("gguf writer: tensor '" + name + "' has a non-positive dimension");
    n *= d;
  }
  return row_bytes(type, dims[0]) * static_cast<size_t>(n / dims[0]);
}
}  // namespace

void Writer::add_tensor(std::string name, TensorType type, std::vector<int64_t> dims, std::span<const uint8_t> data) {
  const size_t n = tensor_bytes(name, type, dims);
  if (data.size() != n)
    throw Error("gguf writer: tensor '" + name + "' has " + std::to_string(data.size()) + " bytes, expected " + std::to_string(n));
  tensors_.push_back({std::move(name), type, std::move(dims), n, data, {}});
}

void Writer::add_tensor(std::string name, TensorType type, std::vector<int64_t> dims, Producer produce) {
  const size_t n = tensor_bytes(name, type, dims);
  tensors_.push_back({std::move(name), type, std::move(dims), n, {}, std::move(produce)});
}

void Writer::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  try {
    Output out(tmp);
    out.pod<uint32_t>(0x46554747);
    out.pod<uint32_t>(3);
    out.pod<uint64_t>(tensors_.size());
    out.pod<uint64_t>(metadata_.size() + (alignment_ != 32 ? 1 : 0));
    if (alignment_ != 32) {
      out.str("general.alignment");
      out.pod<uint32_t>(static_cast<uint32_t>(ValueType::UINT32));
      out.pod<uint32_t>(static_cast<uint32_t>(alignment_));
    }
    for (const auto& [key, value] : metadata_) {
      if (key == "general.alignment") throw Error("gguf writer: set the alignment through the constructor");
      out.str(key);
      out.pod<uint32_t>(static_cast<uint32_t>(value.type));
      write_value(out, value, value.type);
    }
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
      out.str(t.name);
      out.pod<uint32_t>(static_cast<uint32_t>(t.dims.size()));
      for (int64_t d : t.dims) out.pod<uint64_t>(static_cast<uint64_t>(d));
      out.pod<uint32_t>(static_cast<uint32_t>(t.type));
      out.pod<uint64_t>(offset);
      offset += (t.nbytes + alignment_ - 1) / alignment_ * alignment_;
    }
    out.pad_to(alignment_);
    for (const Tensor& t : tensors_) {
      if (t.produce) {
        const std::vector<uint8_t> bytes = t.produce();
        if (bytes.size() != t.nbytes)
          throw Error("gguf writer: tensor '" + t.name + "' produced " + std::to_string(bytes.size()) + " bytes, expected " +
                      std::to_string(t.nbytes));
        out.bytes(bytes.data(), bytes.size());
      } else {
        out.bytes(t.data.data(), t.data.size());
      }
      out.pad_to(alignment_);
    }
    out.close();
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error(path + ": cannot move the finished file into place: " + std::strerror(err));
  }
}

}  // namespace longqa::gguf
