#include "engine/safetensors.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "util/error.h"

namespace longqa {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // as the reference implementation limits it

DType parse_dtype(const std::string& s, const std::string& where) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  throw Error(where + ": dtype " + s + " is not supported (F32, F16 and BF16 are)");
}
}  // namespace

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
  }
  return "?";
}

size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

SafetensorsFile::SafetensorsFile(const std::string& path, FileResidency residency) : map_(path, residency) {
  if (map_.size() < 8) throw Error(path + ": not a safetensors file (shorter than its 8-byte header length)");
  uint64_t header_len;
  std::memcpy(&header_len, map_.data(), 8);
  if (header_len > kMaxHeaderBytes || header_len > map_.size() - 8)
    throw Error(path + ": header length " + std::to_string(header_len) + " exceeds the file or the 100 MB limit");
  json header;
  try {
    header = json::parse(map_.data() + 8, map_.data() + 8 + header_len);
  } catch (const json::exception& e) {
    throw Error(path + ": header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) throw Error(path + ": header is not a JSON object");
  const uint8_t* buffer = map_.data() + 8 + header_len;
  const size_t buffer_size = map_.size() - 8 - header_len;

  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string where = path + ": tensor '" + name + "'";
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
      throw Error(where + ": entry needs dtype, shape and data_offsets");
    const auto& dtype = info["dtype"];
    const auto& shape = info["shape"];
    const auto& offsets = info["data_offsets"];
    if (!dtype.is_string() || !shape.is_array() || !offsets.is_array() || offsets.size() != 2 ||
        !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      throw Error(where + ": malformed dtype, shape or data_offsets");
    SafeTensor t;
    t.name = name;
    t.file = path;
    t.dtype = parse_dtype(dtype.get<std::string>(), where);
    uint64_t n = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) throw Error(where + ": shape entries must be non-negative integers");
      const auto v = d.get<uint64_t>();
      if (v != 0 && n > std::numeric_limits<uint64_t>::max() / 8 / v) throw Error(where + ": shape overflows");
      n *= v;
      t.shape.push_back(static_cast<int64_t>(v));
    }
    const auto begin = offsets[0].get<uint64_t>();
    const auto end = offsets[1].get<uint64_t>();
    if (begin > end || end > buffer_size)
      throw Error(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                  ") fall outside the " + std::to_string(buffer_size) + "-byte data buffer; the file is truncated or corrupt");
    if (end - begin != n * dtype_size(t.dtype))
      throw Error(where + ": " + std::to_string(end - begin) + " bytes do not match shape and dtype (" +
                  std::to_string(n * dtype_size(t.dtype)) + " expected)");
    t.data = buffer + begin;
    t.nbytes = static_cast<size_t>(end - begin);
    tensors_.push_back(std::move(t));
  }
}

SafetensorsModel::SafetensorsModel(const std::string& dir, FileResidency residency) {
  const fs::path root(dir);
  std::vector<std::string> files;
  const fs::path index_path = root / "model.safetensors.index.json";
  if (fs::exists(index_path)) {
    json index;
    try {
      std::ifstream in(index_path);
      index = json::parse(in);
    } catch (const json::exception& e) {
      throw Error(index_path.string() + ": not valid JSON: " + e.what());
    }
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
      throw Error(index_path.string() + ": missing the weight_map object");
    std::set<std::string> names;
    for (const auto& [tensor, file] : index["weight_map"].items()) {
      if (!file.is_string()) throw Error(index_path.string() + ": weight_map entry '" + tensor + "' is not a file name");
      const auto f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        throw Error(index_path.string() + ": shard name '" + f + "' must be a plain file name");
      names.insert(f);
    }
    files.assign(names.begin(), names.end());
  } else if (fs::exists(root / "model.safetensors")) {
    files.push_back("model.safetensors");
  } else {
    throw Error(dir + ": no model.safetensors or model.safetensors.index.json in this directory");
  }
  for (const auto& f : files) {
    shards_.push_back(std::make_unique<SafetensorsFile>((root / f).string(), residency));
    for (const SafeTensor& t : shards_.back()->tensors()) {
      if (!index_.emplace(t.name, &t).second) throw Error(t.file + ": tensor '" + t.name + "' appears in two shards");
    }
  }
}

const SafeTensor* SafetensorsModel::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : it->second;
}

}  // namespace longqa
