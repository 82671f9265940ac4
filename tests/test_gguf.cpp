// GGUF reader and writer: round trips of every value type, the fixture files, and malformed or
// hostile files that must end in one clear longqa::Error (never a crash or an out-of-bounds read).
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>

#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/model.h"
#include "test_util.h"
#include "util/error.h"

namespace longqa {
namespace {

using gguf::TensorType;
using gguf::Value;
using gguf::ValueType;
using test::TempDir;

// Raw little-endian bytes, for files the writer would refuse to make.
struct Bytes {
  std::vector<uint8_t> b;
  template <typename T>
  Bytes& pod(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof v);
    return *this;
  }
  Bytes& str(const std::string& s) {
    pod<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& pad(size_t a) {
    while (b.size() % a) b.push_back(0);
    return *this;
  }
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return pod<uint32_t>(0x46554747).pod<uint32_t>(version).pod<uint64_t>(n_tensors).pod<uint64_t>(n_kv);
  }
  Bytes& kv_u32(const std::string& k, uint32_t v) { return str(k).pod<uint32_t>(4).pod<uint32_t>(v); }
  Bytes& tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).pod<uint32_t>(static_cast<uint32_t>(dims.size()));
    for (auto d : dims) pod<uint64_t>(d);
    return pod<uint32_t>(type).pod<uint64_t>(offset);
  }
};

// Expects opening `bytes` as GGUF to throw an Error whose message contains `needle` and the path.
void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
  TempDir dir;
  const std::string path = dir.file("bad.gguf");
  test::write_bytes(path, bytes);
  try {
    gguf::File f(path);
    FAIL() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << "the error should name the file: " << msg;
  }
}

std::vector<uint8_t> f32_bytes(std::vector<float> v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// A small valid file with every value type, built by the writer.
std::vector<uint8_t> sample_file(const TempDir& dir, size_t alignment = 32) {
  gguf::Writer w(alignment);
  w.set("u8", {ValueType::UINT8, uint64_t{200}});
  w.set("i8", {ValueType::INT8, int64_t{-100}});
  w.set("u16", {ValueType::UINT16, uint64_t{60000}});
  w.set("i16", {ValueType::INT16, int64_t{-30000}});
  w.set("u32", Value::u32(4000000000u));
  w.set("i32", Value::i32(-2000000000));
  w.set("f32", Value::f32(1.5f));
  w.set("bool", Value::boolean(true));
  w.set("str", Value::str("héllo"));
  w.set("u64", Value::u64(1ull << 60));
  w.set("i64", {ValueType::INT64, int64_t{-(1ll << 60)}});
  w.set("f64", {ValueType::FLOAT64, 2.25});
  w.set("arr", Value::array(ValueType::INT32, {Value::i32(1), Value::i32(-2), Value::i32(3)}));
  w.set("strs", Value::array(ValueType::STRING, {Value::str("a"), Value::str("")}));
  w.set("nested", Value::array(ValueType::ARRAY, {Value::array(ValueType::UINT32, {Value::u32(7)})}));
  static const std::vector<uint8_t> a = f32_bytes({1, 2, 3, 4, 5, 6});
  static const std::vector<uint8_t> h(2 * 5 * 2, 0x3c);  // F16 [5, 2]
  w.add_tensor("a", TensorType::F32, {3, 2}, a);
  w.add_tensor("h", TensorType::F16, {5, 2}, h);
  const std::string path = dir.file("sample.gguf");
  w.write(path);
  return test::read_bytes(path);
}

TEST(Gguf, RoundTripsEveryValueType) {
  TempDir dir;
  sample_file(dir, 64);
  gguf::File f(dir.file("sample.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.get_int("u8"), 200);
  EXPECT_EQ(f.get_int("i8"), -100);
  EXPECT_EQ(f.get_int("u16"), 60000);
  EXPECT_EQ(f.get_int("i16"), -30000);
  EXPECT_EQ(f.get_int("u32"), 4000000000ll);
  EXPECT_EQ(f.get_int("i32"), -2000000000);
  EXPECT_EQ(f.get_float("f32"), 1.5);
  EXPECT_TRUE(f.get("bool").as_bool("bool"));
  EXPECT_EQ(f.get_string("str"), "héllo");
  EXPECT_EQ(f.get_int("u64"), 1ll << 60);
  EXPECT_EQ(f.get_int("i64"), -(1ll << 60));
  EXPECT_EQ(f.get_float("f64"), 2.25);
  EXPECT_EQ(f.get_ints("arr"), (std::vector<int32_t>{1, -2, 3}));
  EXPECT_EQ(f.get_strings("strs"), (std::vector<std::string>{"a", ""}));
  const auto& nested = f.get("nested").as_array("nested");
  ASSERT_EQ(nested.items.size(), 1u);
  EXPECT_EQ(nested.items[0].as_array("nested").items[0].as_int("nested"), 7);
  EXPECT_EQ(f.find("missing"), nullptr);
  EXPECT_THROW(f.get("missing"), Error);
  EXPECT_THROW(f.get_string("u32"), Error);  // wrong type is an error, not a silent cast

  ASSERT_EQ(f.tensors().size(), 2u);
  const gguf::TensorInfo* a = f.find_tensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dims, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(a->nbytes, 24u);
  float v[6];
  std::memcpy(v, a->data, sizeof v);
  EXPECT_EQ(v[5], 6.0f);
  EXPECT_EQ(f.find_tensor("h")->type, TensorType::F16);
  EXPECT_EQ((reinterpret_cast<uintptr_t>(f.find_tensor("h")->data) - reinterpret_cast<uintptr_t>(a->data)) % 64, 0u);
}

// The bytes under every file reader: mapped, or read into huge-page memory, they are the same; sizes
// around the 2 MiB page and empty files included.
TEST(MappedFile, BothResidenciesHoldTheFileBytes) {
  TempDir dir;
  std::mt19937 rng(7);
  for (size_t size : {size_t{0}, size_t{1}, size_t{2} << 20, (size_t{2} << 20) + 12345, size_t{5} << 20}) {
    SCOPED_TRACE(size);
    std::vector<uint8_t> bytes(size);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    const auto path = dir.file("f" + std::to_string(size));
    test::write_bytes(path, bytes);
    for (FileResidency r : {FileResidency::Mapped, FileResidency::HugePages}) {
      const MappedFile f(path, r);
      ASSERT_EQ(f.size(), size);
      if (size > 0) {
        EXPECT_EQ(std::memcmp(f.data(), bytes.data(), size), 0);
      }
    }
  }
}

// The loader rearranges weights in the private copy; a mapping's pages are the file's and stay so.
TEST(MappedFile, OnlyTheCopyCanBeEdited) {
  TempDir dir;
  const auto path = dir.file("f");
  test::write_bytes(path, std::vector<uint8_t>{1, 2, 3});
  MappedFile copy(path, FileResidency::HugePages);
  copy.edit([](std::span<uint8_t> bytes) {
    ASSERT_EQ(bytes.size(), 3u);
    bytes[1] = 9;
  });
  EXPECT_EQ(copy.data()[1], 9);
  MappedFile mapped(path, FileResidency::Mapped);
  EXPECT_THROW(mapped.edit([](std::span<uint8_t>) {}), Error);
  EXPECT_EQ(mapped.data()[1], 2);
}

TEST(MappedFile, RefusesWhatIsNotARegularFile) {
  TempDir dir;
  for (FileResidency r : {FileResidency::Mapped, FileResidency::HugePages}) {
    for (const auto& [path, needle] : {std::pair{dir.file(""), "not a regular file"}, std::pair{dir.file("missing"), "cannot open"}}) {
      try {
        const MappedFile f(path, r);
        ADD_FAILURE() << path << ": no error";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      }
    }
  }
}

TEST(Gguf, ReadsTheFixtureFile) {
  gguf::File f(test::model_dir("tiny-llama3.f32.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 4);
  EXPECT_EQ(f.get_strings("tokenizer.ggml.tokens").size(), 512u);
  EXPECT_EQ(f.tensors().size(), 39u);
  const auto* t = f.find_tensor("token_embd.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dims, (std::vector<int64_t>{128, 512}));
}

TEST(Gguf, NamesEveryPublicType) {
  EXPECT_EQ(gguf::type_name(TensorType::Q4_K), "Q4_K");
  EXPECT_EQ(gguf::type_name(TensorType::BF16), "BF16");
  EXPECT_EQ(gguf::type_traits(static_cast<uint32_t>(TensorType::Q6_K))->block_bytes, 210u);
  EXPECT_EQ(gguf::type_traits(4), nullptr);  // removed Q4_2
  EXPECT_EQ(gguf::type_traits(1000), nullptr);
  EXPECT_EQ(gguf::row_bytes(TensorType::Q8_0, 64), 68u);
  EXPECT_THROW(gguf::row_bytes(TensorType::Q8_0, 33), Error);
}

TEST(Gguf, EveryTruncationIsAnError) {
  TempDir dir;
  const std::vector<uint8_t> full = sample_file(dir);
  gguf::File ok(dir.file("sample.gguf"));
  const gguf::TensorInfo& last = ok.tensors().back();
  const size_t needed = ok.data_offset() + last.offset + last.nbytes;
  for (size_t len = 0; len < full.size(); ++len) {
    const std::string path = dir.file("cut.gguf");
    test::write_bytes(path, std::vector<uint8_t>(full.begin(), full.begin() + static_cast<ptrdiff_t>(len)));
    if (len < needed) {
      EXPECT_THROW(gguf::File f(path), Error) << "truncated to " << len << " bytes";
    } else {
      EXPECT_NO_THROW(gguf::File f(path)) << "only padding removed: " << len;
    }
  }
}

TEST(Gguf, RandomCorruptionNeverCrashes) {
  TempDir dir;
  const std::vector<uint8_t> full = sample_file(dir);
  gguf::File ok(dir.file("sample.gguf"));
  std::mt19937 rng(1234);
  int errors = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    std::vector<uint8_t> b = full;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % ok.data_offset()] = static_cast<uint8_t>(rng());
    const std::string path = dir.file("fuzz.gguf");
    test::write_bytes(path, b);
    try {
      gguf::File f(path);
      for (const auto& t : f.tensors()) ASSERT_LE(f.data_offset() + t.offset + t.nbytes, b.size()) << t.name;
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 100);  // most corruptions are detected; none crash (ASan checks the rest)
}

TEST(Gguf, ReadsVersion2) {
  test::TempDir dir;
  const std::string path = dir.file("v2.gguf");
  test::write_bytes(path, Bytes{}.header(0, 1, 2).kv_u32("answer", 42).b);
  gguf::File f(path);
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.get_int("answer"), 42);
}

TEST(Gguf, MalformedHeaders) {
  expect_error(Bytes{}.pod<uint32_t>(0x12345678).pod<uint32_t>(3).pod<uint64_t>(0).pod<uint64_t>(0).b, "bad magic");
  expect_error(Bytes{}.pod<uint16_t>(1).b, "bad magic");
  expect_error(Bytes{}.header(0, 0, 1).b, "version 1");
  expect_error(Bytes{}.header(0, 0, 4).b, "unsupported GGUF version 4");
  expect_error(Bytes{}.header(0, 1ull << 60).b, "metadata count");
  expect_error(Bytes{}.header(1ull << 60, 0).b, "tensor count");
  expect_error(Bytes{}.header(0, 1).pod<uint64_t>(1ull << 62).pod<uint64_t>(0).pod<uint64_t>(0).b, "string length");
  expect_error(Bytes{}.header(0, 1).str("k").pod<uint32_t>(13).pod<uint32_t>(0).b, "unknown value type 13");
  expect_error(Bytes{}.header(0, 1).str("k").pod<uint32_t>(7).pod<uint8_t>(2).b, "bool value 2");
  expect_error(Bytes{}.header(0, 1).str("k").pod<uint32_t>(9).pod<uint32_t>(6).pod<uint64_t>(1ull << 40).b, "cannot fit");
  expect_error(Bytes{}.header(0, 1).str("k").pod<uint32_t>(9).pod<uint32_t>(77).pod<uint64_t>(0).b, "unknown array element type");
  {
    Bytes b;
    b.header(0, 1).str("deep").pod<uint32_t>(9);  // an array of arrays of arrays ...
    for (int i = 0; i < 6; ++i) b.pod<uint32_t>(9).pod<uint64_t>(1);
    b.pod<uint32_t>(4).pod<uint64_t>(0);
    for (int i = 0; i < 64; ++i) b.pod<uint8_t>(0);
    expect_error(b.b, "nested too deeply");
  }
  expect_error(Bytes{}.header(0, 2).kv_u32("a", 1).kv_u32("a", 2).b, "duplicate metadata key 'a'");
  expect_error(Bytes{}.header(0, 1).kv_u32("general.alignment", 3).b, "not a power of two");
  expect_error(Bytes{}.header(0, 1).str("general.alignment").pod<uint32_t>(8).str("x").b, "must be uint32");
  expect_error(Bytes{}.header(0, 1).str("").pod<uint32_t>(4).pod<uint32_t>(0).b, "empty metadata key");
}

TEST(Gguf, MalformedTensorTables) {
  auto one = [](const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset, size_t data = 64) {
    Bytes b;
    b.header(1, 0).tensor(name, std::move(dims), type, offset).pad(32);
    b.b.resize(b.b.size() + data);
    return b.b;
  };
  expect_error(one("t", {4}, 4, 0), "unknown tensor type 4");
  expect_error(one("t", {4}, 99, 0), "unknown tensor type 99");
  expect_error(one("t", {}, 0, 0), "0 dimensions");
  expect_error(one("t", {1, 1, 1, 1, 1}, 0, 0), "5 dimensions");
  expect_error(one("t", {4, 0}, 0, 0), "zero or too large");
  expect_error(one("t", {1ull << 40, 1ull << 40}, 0, 0), "zero or too large");
  expect_error(one("t", {33}, 2, 0), "not a multiple of the Q4_0 block size");
  expect_error(one("t", {4}, 0, 8), "not aligned");
  expect_error(one("t", {4}, 0, 1ull << 40), "runs past the end");
  expect_error(one("t", {32}, 0, 0, 64), "runs past the end");  // 128 bytes needed, 64 present
  {
    Bytes b;
    b.header(2, 0).tensor("t", {4}, 0, 0).tensor("t", {4}, 0, 32).pad(32);
    b.b.resize(b.b.size() + 64);
    expect_error(b.b, "duplicate tensor name 't'");
  }
}

TEST(Gguf, WriterRejectsBadTensorsAndLeavesNoPartialFile) {
  TempDir dir;
  gguf::Writer w;
  const std::vector<uint8_t> bytes(12);
  EXPECT_THROW(w.add_tensor("t", TensorType::F32, {4}, bytes), Error);  // 16 bytes expected
  EXPECT_THROW(w.add_tensor("t", TensorType::Q8_0, {33}, bytes), Error);
  w.add_tensor("lazy", TensorType::F32, {4}, [] { return std::vector<uint8_t>(8); });  // wrong size when produced
  EXPECT_THROW(w.write(dir.file("out.gguf")), Error);
  EXPECT_FALSE(std::filesystem::exists(dir.file("out.gguf")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("out.gguf.tmp")));
}

// Copies the fixture model through the writer, letting `edit` change or drop tensors and metadata.
using TensorEdit = std::function<bool(const gguf::TensorInfo&, TensorType&, std::vector<int64_t>&, std::vector<uint8_t>&)>;
std::string rewrite_fixture(const TempDir& dir, const TensorEdit& edit,
                            const std::function<void(gguf::Writer&)>& meta = {}) {
  gguf::File src(test::model_dir("tiny-llama3.f32.gguf"));
  gguf::Writer w;
  for (const auto& [k, v] : src.metadata())
    if (k != "general.alignment") w.set(k, v);
  if (meta) meta(w);
  for (const auto& t : src.tensors()) {
    TensorType type = t.type;
    std::vector<int64_t> dims = t.dims;
    std::vector<uint8_t> data(t.data, t.data + t.nbytes);
    if (!edit(t, type, dims, data)) continue;
    w.add_tensor(t.name, type, dims, [data] { return data; });
  }
  const std::string path = dir.file("model.gguf");
  w.write(path);
  return path;
}

void expect_model_error(const std::string& path, const std::string& needle) {
  try {
    Model::load(path);
    FAIL() << "no error; expected '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(GgufModel, UnchangedCopyLoads) {
  TempDir dir;
  const auto path = rewrite_fixture(dir, [](auto&, auto&, auto&, auto&) { return true; });
  EXPECT_NO_THROW(Model::load(path));
}

TEST(GgufModel, MissingTensor) {
  TempDir dir;
  const auto path = rewrite_fixture(dir, [](const gguf::TensorInfo& t, auto&, auto&, auto&) { return t.name != "blk.1.ffn_up.weight"; });
  expect_model_error(path, "missing tensor 'blk.1.ffn_up.weight'");
}

TEST(GgufModel, ShapeMismatch) {
  TempDir dir;
  const auto path = rewrite_fixture(dir, [](const gguf::TensorInfo& t, auto&, std::vector<int64_t>& dims, auto&) {
    if (t.name == "blk.2.attn_k.weight") dims = {64, 64};
    return true;
  });
  expect_model_error(path, "tensor 'blk.2.attn_k.weight' has shape [64, 64], expected [32, 128]");
}

TEST(GgufModel, QuantizedTypeIsRefusedByName) {
  TempDir dir;
  const auto path = rewrite_fixture(dir, [](const gguf::TensorInfo& t, TensorType& type, auto&, std::vector<uint8_t>& data) {
    if (t.name == "blk.0.ffn_gate.weight") {  // [128, 384] F32 -> IQ4_NL: 384 rows of 4 blocks
      type = TensorType::IQ4_NL;
      data.assign(384 * 4 * 18, 0);
    }
    return true;
  });
  expect_model_error(path, "tensor 'blk.0.ffn_gate.weight' has type IQ4_NL, which this build cannot compute yet");
}

TEST(GgufModel, UnsupportedArchitectureAndBadHyperParameters) {
  TempDir dir;
  auto keep = [](auto&, auto&, auto&, auto&) { return true; };
  expect_model_error(rewrite_fixture(dir, keep, [](gguf::Writer& w) { w.set("general.architecture", Value::str("falcon")); }),
                     "architecture 'falcon' is not supported");
  expect_model_error(rewrite_fixture(dir, keep, [](gguf::Writer& w) { w.set("llama.attention.head_count_kv", Value::u32(3)); }),
                     "must divide the head count");
  expect_model_error(rewrite_fixture(dir, keep, [](gguf::Writer& w) { w.set("llama.block_count", Value::u32(0)); }),
                     "layer count 0");
  expect_model_error(rewrite_fixture(dir, keep, [](gguf::Writer& w) { w.set("llama.block_count", Value::str("4")); }),
                     "expected an integer");
  expect_model_error(rewrite_fixture(dir, keep, [](gguf::Writer& w) { w.set("tokenizer.ggml.model", Value::str("bert")); }),
                     "tokenizer model 'bert' is not supported");
}

}  // namespace
}  // namespace longqa
