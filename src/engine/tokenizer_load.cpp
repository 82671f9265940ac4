// Building tokenizers from the two places models keep them: HF `tokenizer.json` and GGUF
// `tokenizer.ggml.*` keys.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/gguf.h"
#include "engine/pretokenizer.h"
#include "engine/tokenizer_impl.h"
#include "util/error.h"

namespace longqa {

std::unique_ptr<Tokenizer> make_byte_level_bpe(TokenizerSpec spec);     // tokenizer_bpe.cpp
std::unique_ptr<Tokenizer> make_sentencepiece_bpe(TokenizerSpec spec);  // tokenizer_spm.cpp

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

enum GgufTokenType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

MergeList split_merges(const std::vector<std::string>& lines, const std::string& source) {
  MergeList merges;
  merges.reserve(lines.size());
  for (const auto& m : lines) {
    const size_t sp = m.find(' ', 1);
    if (sp == std::string::npos) throw Error(source + ": merge '" + m + "' is not two tokens separated by a space");
    merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
  }
  return merges;
}

// Walks a pre_tokenizer/normalizer tree (possibly a Sequence) calling visit on each leaf object.
template <typename Visit>
void walk(const json& node, const char* list_key, Visit&& visit) {
  if (!node.is_object()) return;
  if (node.value("type", "") == "Sequence" && node.contains(list_key) && node[list_key].is_array()) {
    for (const auto& child : node[list_key]) walk(child, list_key, visit);
    return;
  }
  visit(node);
}

TokenizerSpec spec_from_json(const json& j, const std::string& source) {
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) throw Error(source + ": no 'model' object");
  const json& model = j["model"];
  const std::string type = model.value("type", "");
  if (type != "BPE") throw Error(source + ": tokenizer model '" + type + "' is not supported (BPE is)");
  if (!model.contains("vocab") || !model["vocab"].is_object()) throw Error(source + ": model.vocab is missing");

  TokenizerSpec spec;
  std::vector<std::string>& vocab = spec.vocab;
  auto place = [&](int64_t id, const std::string& text) {
    if (id < 0 || id >= (1 << 24)) throw Error(source + ": token id " + std::to_string(id) + " is out of range");
    if (static_cast<size_t>(id) >= vocab.size()) vocab.resize(static_cast<size_t>(id) + 1);
    vocab[static_cast<size_t>(id)] = text;
  };
  for (const auto& [text, id] : model["vocab"].items()) {
    if (!id.is_number_integer()) throw Error(source + ": vocab entry '" + text + "' has no integer id");
    place(id.get<int64_t>(), text);
  }
  std::vector<Tokenizer::AddedToken>& added = spec.added;
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& t : j["added_tokens"]) {
      if (!t.contains("id") || !t.contains("content") || !t["id"].is_number_integer() || !t["content"].is_string())
        throw Error(source + ": malformed added_tokens entry");
      place(t["id"].get<int64_t>(), t["content"].get<std::string>());
      added.push_back({t["content"].get<std::string>(), t["id"].get<int32_t>(), t.value("special", false)});
    }
  }

  MergeList& merges = spec.merges;
  if (model.contains("merges") && model["merges"].is_array()) {
    std::vector<std::string> lines;
    for (const auto& m : model["merges"]) {
      if (m.is_string()) lines.push_back(m.get<std::string>());
      else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
        merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      else throw Error(source + ": malformed merge entry");
    }
    if (!lines.empty()) merges = split_merges(lines, source);
  }

  bool byte_level = false, metaspace = false, prepend_space = false;
  std::string pattern;
  if (j.contains("pre_tokenizer")) {
    walk(j["pre_tokenizer"], "pretokenizers", [&](const json& n) {
      const std::string t = n.value("type", "");
      if (t == "Split" && n.contains("pattern") && n["pattern"].contains("Regex")) pattern = n["pattern"]["Regex"].get<std::string>();
      if (t == "ByteLevel") {
        byte_level = true;
        if (n.value("use_regex", true) && pattern.empty()) pattern = regex::kGpt2;
      }
      if (t == "Metaspace") {
        metaspace = true;
        const std::string scheme = n.value("prepend_scheme", std::string("always"));
        prepend_space = scheme != "never" && n.value("add_prefix_space", true);
        spec.prefix_first_only = scheme == "first";
        spec.split_words = n.value("split", true);
      }
    });
  }
  if (j.contains("normalizer")) {
    walk(j["normalizer"], "normalizers", [&](const json& n) {
      if (n.value("type", "") == "Prepend") prepend_space = true;
      if (n.value("type", "") == "Replace") metaspace = true;
    });
  }
  if (byte_level) {
    if (pattern.empty()) throw Error(source + ": byte-level pre-tokenizer without a split pattern");
    spec.kind = TokenizerSpec::Kind::ByteLevelBpe;
    spec.pattern = pattern;
    spec.ignore_merges = model.value("ignore_merges", false);
    return spec;
  }
  if (metaspace || model.value("byte_fallback", false)) {
    spec.kind = TokenizerSpec::Kind::SentencePiece;
    spec.add_space_prefix = prepend_space;
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
      auto it = model["vocab"].find(model["unk_token"].get<std::string>());
      if (it != model["vocab"].end()) spec.unk_id = it->get<int32_t>();
    }
    return spec;
  }
  throw Error(source + ": BPE tokenizer with neither a ByteLevel nor a Metaspace pre-tokenizer is not supported");
}

}  // namespace

TokenizerSpec tokenizer_spec_from_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
  return spec_from_json(j, path);
}

std::unique_ptr<Tokenizer> tokenizer_from_json_file(const std::string& path) {
  return make_tokenizer(tokenizer_spec_from_json_file(path));
}

std::unique_ptr<Tokenizer> make_tokenizer(TokenizerSpec spec) {
  if (spec.kind == TokenizerSpec::Kind::ByteLevelBpe) return make_byte_level_bpe(std::move(spec));
  return make_sentencepiece_bpe(std::move(spec));
}

std::string gguf_pre_name(const std::string& pattern) {
  if (pattern == regex::kLlama3) return "llama-bpe";
  if (pattern == regex::kQwen2) return "qwen2";
  if (pattern == regex::kGpt2) return "gpt-2";
  return "";
}

std::unique_ptr<Tokenizer> tokenizer_from_gguf(const gguf::File& f) {
  const std::string model = f.get_string("tokenizer.ggml.model").value_or("");
  TokenizerSpec spec;
  spec.vocab = f.get_strings("tokenizer.ggml.tokens");
  std::vector<std::string>& vocab = spec.vocab;
  if (vocab.empty()) throw Error(f.path() + ": no tokenizer.ggml.tokens; the file carries no tokenizer");
  const std::vector<int32_t> types = f.get_ints("tokenizer.ggml.token_type");
  if (!types.empty() && types.size() != vocab.size())
    throw Error(f.path() + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) + " entries for " +
                std::to_string(vocab.size()) + " tokens");
  for (size_t i = 0; i < types.size(); ++i)
    if (types[i] == kControl || types[i] == kUserDefined)
      spec.added.push_back({vocab[i], static_cast<int32_t>(i), types[i] == kControl});

  if (model == "gpt2") {
    const std::string pre = f.get_string("tokenizer.ggml.pre").value_or("default");
    if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
      spec.pattern = regex::kLlama3;
      spec.ignore_merges = true;
    } else if (pre == "qwen2") {
      spec.pattern = regex::kQwen2;
    } else if (pre == "default" || pre == "gpt-2" || pre == "gpt2") {
      spec.pattern = regex::kGpt2;
    } else {
      throw Error(f.path() + ": pre-tokenizer '" + pre + "' is not supported (llama-bpe, qwen2, gpt-2)");
    }
    spec.merges = split_merges(f.get_strings("tokenizer.ggml.merges"), f.path());
    return make_tokenizer(std::move(spec));
  }
  if (model == "llama") {
    spec.kind = TokenizerSpec::Kind::SentencePiece;
    spec.scores = f.get_floats("tokenizer.ggml.scores");
    if (const gguf::Value* v = f.find("tokenizer.ggml.add_space_prefix")) spec.add_space_prefix = v->as_bool("tokenizer.ggml.add_space_prefix");
    spec.unk_id = static_cast<int32_t>(f.get_int("tokenizer.ggml.unknown_token_id").value_or(-1));
    return make_tokenizer(std::move(spec));
  }
  throw Error(f.path() + ": tokenizer model '" + model + "' is not supported (gpt2, llama)");
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  if (fs::is_directory(path)) return tokenizer_from_json_file((fs::path(path) / "tokenizer.json").string());
  if (path.ends_with(".json")) return tokenizer_from_json_file(path);
  return tokenizer_from_gguf(gguf::File(path));
}

}  // namespace longqa
