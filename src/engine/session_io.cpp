// Session prefix files: a header naming the model shape and KV type, the prefix's token ids, then the
// raw KV rows of every layer and head. Written to a temporary file and renamed, so a reader never
// sees half a file.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "engine/transformer.h"
#include "util/error.h"

namespace longqa {
namespace {

constexpr char kMagic[8] = {'L', 'Q', 'K', 'V', '0', '0', '0', '1'};

struct Header {
  char magic[8];
  int64_t n_layers, n_kv_heads, head_dim, vocab, kv_type, n_tokens;
};

Header header_for(const ModelConfig& c, kernels::WType kv_type, int64_t n) {
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.n_layers = c.n_layers;
  h.n_kv_heads = c.n_kv_heads;
  h.head_dim = c.head_dim;
  h.vocab = c.vocab_size;
  h.kv_type = static_cast<int64_t>(kv_type);
  h.n_tokens = n;
  return h;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

void Session::save_prefix(const std::string& path, std::span<const int32_t> tokens) const {
  if (static_cast<int64_t>(tokens.size()) != position_)
    throw Error("save_prefix: " + std::to_string(tokens.size()) + " tokens given for a session at position " +
                std::to_string(position_));
  const std::string tmp = path + ".tmp";
  {
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(tmp.c_str(), "wb"));
    if (!f) throw Error(tmp + ": cannot create: " + std::strerror(errno));
    const Header h = header_for(c_, cache_.type(), position_);
    const bool ok = std::fwrite(&h, sizeof h, 1, f.get()) == 1 &&
                    std::fwrite(tokens.data(), sizeof(int32_t), tokens.size(), f.get()) == tokens.size() &&
                    cache_.write(f.get(), position_) && std::fflush(f.get()) == 0;
    if (!ok) {
      f.reset();
      std::filesystem::remove(tmp);
      throw Error(tmp + ": write failed: " + std::strerror(errno));
    }
  }
  std::filesystem::rename(tmp, path);
}

std::vector<int32_t> Session::load_prefix(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
  Header h{};
  if (std::fread(&h, sizeof h, 1, f.get()) != 1 || std::memcmp(h.magic, kMagic, sizeof kMagic) != 0)
    throw Error(path + ": not a longqa KV prefix file");
  const Header expect = header_for(c_, cache_.type(), h.n_tokens);
  if (std::memcmp(&h, &expect, sizeof h) != 0)
    throw Error(path + ": saved from another model shape or KV type");
  if (h.n_tokens <= 0 || h.n_tokens > capacity()) throw Error(path + ": a prefix of " + std::to_string(h.n_tokens) +
                                                              " tokens does not fit this session's " +
                                                              std::to_string(capacity()) + " positions");
  std::vector<int32_t> tokens(static_cast<size_t>(h.n_tokens));
  position_ = 0;
  last_row_ = -1;
  if (std::fread(tokens.data(), sizeof(int32_t), tokens.size(), f.get()) != tokens.size() || !cache_.read(f.get(), h.n_tokens))
    throw Error(path + ": truncated KV prefix file");
  position_ = h.n_tokens;
  return tokens;
}

}  // namespace longqa
