// Safetensors files and HF directories: the fixture models, sharded checkpoints, and malformed files.
#include <gtest/gtest.h>

#include <cstring>

#include "engine/model.h"
#include "engine/safetensors.h"
#include "engine/transformer.h"
#include "test_util.h"
#include "util/error.h"

namespace longqa {
namespace {

using nlohmann::json;
using test::TempDir;

std::vector<uint8_t> safetensors_bytes(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> b(8 + header.size() + data_bytes);
  const uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  test::write_bytes(path, bytes);
  try {
    SafetensorsFile f(path);
    FAIL() << "no error; expected '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Safetensors, ReadsAValidFile) {
  TempDir dir;
  const std::string path = dir.file("ok.safetensors");
  test::write_bytes(path, safetensors_bytes(R"({"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}})", 12));
  SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.tensors()[0].dtype, DType::BF16);
  EXPECT_EQ(f.tensors()[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.tensors()[0].nbytes, 12u);
}

TEST(Safetensors, MalformedFiles) {
  expect_error({1, 2, 3}, "shorter than its 8-byte header");
  expect_error(safetensors_bytes("{", 0), "not valid JSON");
  expect_error(safetensors_bytes("[1,2]", 0), "not a JSON object");
  {
    auto b = safetensors_bytes("{}", 0);
    const uint64_t huge = 1ull << 40;
    std::memcpy(b.data(), &huge, 8);
    expect_error(b, "header length");
  }
  expect_error(safetensors_bytes(R"({"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8), "dtype I64 is not supported");
  expect_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8), "outside the 8-byte data buffer");
  expect_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[8,4]}})", 16), "outside");
  expect_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16), "do not match shape and dtype");
  expect_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4), "non-negative");
  expect_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4), "overflows");
  expect_error(safetensors_bytes(R"({"w":{"dtype":"F32"}})", 0), "needs dtype, shape and data_offsets");
  expect_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4), "malformed");
}

// Splits the fixture model into two shards with an index, as large HF checkpoints are stored.
void write_sharded(const std::string& src_dir, const TempDir& dir) {
  SafetensorsFile src(src_dir + "/model.safetensors");
  json index = {{"metadata", json::object()}, {"weight_map", json::object()}};
  for (int shard = 0; shard < 2; ++shard) {
    json header = json::object();
    std::vector<uint8_t> data;
    const std::string name = "model-0000" + std::to_string(shard + 1) + "-of-00002.safetensors";
    for (size_t i = shard; i < src.tensors().size(); i += 2) {
      const SafeTensor& t = src.tensors()[i];
      header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.nbytes}}};
      data.insert(data.end(), t.data, t.data + t.nbytes);
      index["weight_map"][t.name] = name;
    }
    std::vector<uint8_t> bytes = safetensors_bytes(header.dump(), 0);
    bytes.insert(bytes.end(), data.begin(), data.end());
    test::write_bytes(dir.file(name), bytes);
  }
  std::ofstream(dir.file("model.safetensors.index.json")) << index.dump();
  for (const char* f : {"config.json", "tokenizer.json"}) std::filesystem::copy_file(src_dir + "/" + f, dir.file(f));
}

TEST(Safetensors, ShardedDirectoryGivesTheSameLogits) {
  TempDir dir;
  write_sharded(test::model_dir("tiny-qwen2"), dir);
  const auto sharded = Model::load(dir.file(""));
  const auto single = Model::load(test::model_dir("tiny-qwen2"));
  ASSERT_EQ(sharded->safetensors()->shards().size(), 2u);
  const std::vector<int32_t> ids = {510, 5, 300, 42, 7};
  Session a(*sharded, {.context = 8}), b(*single, {.context = 8});
  const auto la = a.decode(ids);
  const auto lb = b.decode(ids);
  for (size_t i = 0; i < la.size(); ++i) ASSERT_EQ(la[i], lb[i]);
}

TEST(Safetensors, DirectoryErrors) {
  TempDir dir;
  EXPECT_THROW(SafetensorsModel m(dir.file("")), Error);  // no weights at all
  std::ofstream(dir.file("model.safetensors.index.json")) << R"({"weight_map": {"w": "../../etc/passwd"}})";
  try {
    SafetensorsModel m(dir.file(""));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("plain file name"), std::string::npos) << e.what();
  }
  std::ofstream(dir.file("model.safetensors.index.json")) << R"({"weight_map": {"w": "missing.safetensors"}})";
  EXPECT_THROW(SafetensorsModel m(dir.file("")), Error);
}

TEST(HfModel, MissingOrBrokenFilesAreClearErrors) {
  TempDir dir;
  for (const char* f : {"config.json", "tokenizer.json", "model.safetensors"})
    std::filesystem::copy_file(test::model_dir("tiny-llama3") + "/" + f, dir.file(f));
  EXPECT_NO_THROW(Model::load(dir.file("")));

  json config = test::read_json(dir.file("config.json"));
  config["model_type"] = "gpt_neox";
  std::ofstream(dir.file("config.json")) << config.dump();
  try {
    Model::load(dir.file(""));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model type 'gpt_neox' is not supported"), std::string::npos) << e.what();
  }
  config["model_type"] = "llama";
  config["num_hidden_layers"] = 5;  // one more layer than the weights hold
  std::ofstream(dir.file("config.json")) << config.dump();
  try {
    Model::load(dir.file(""));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'model.layers.4.input_layernorm.weight'"), std::string::npos) << e.what();
  }
  std::ofstream(dir.file("config.json")) << "{not json";
  EXPECT_THROW(Model::load(dir.file("")), Error);
  std::filesystem::remove(dir.file("config.json"));
  EXPECT_THROW(Model::load(dir.file("")), Error);
}

}  // namespace
}  // namespace longqa
