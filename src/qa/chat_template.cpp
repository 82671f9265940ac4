#include "qa/chat_template.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/gguf.h"
#include "util/error.h"

namespace longqa::qa {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The Jinja chat template the model ships, if any, and a name to recognise ChatQA by.
void model_metadata(const Model& model, std::string& chat_template, std::string& name) {
  name = model.path();
  if (const gguf::File* g = model.gguf_file()) {
    if (const auto* v = g->find("tokenizer.chat_template"); v && v->type == gguf::ValueType::STRING)
      chat_template = v->as_string("tokenizer.chat_template");
    if (const auto* v = g->find("general.name"); v && v->type == gguf::ValueType::STRING)
      name += " " + v->as_string("general.name");
    return;
  }
  const auto config = std::filesystem::path(model.path()) / "tokenizer_config.json";
  std::ifstream in(config);
  if (!in) return;
  const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_object())
    if (const auto t = j.find("chat_template"); t != j.end() && t->is_string()) chat_template = t->get<std::string>();
}

}  // namespace

Template parse_template(const std::string& name) {
  if (name == "chatqa") return Template::ChatQA;
  if (name == "llama3") return Template::Llama3;
  if (name == "chatml") return Template::ChatML;
  if (name == "mistral") return Template::Mistral;
  throw Error("--template must be chatqa, llama3, chatml or mistral, not '" + name + "'");
}

const char* template_name(Template t) {
  switch (t) {
    case Template::ChatQA: return "chatqa";
    case Template::Llama3: return "llama3";
    case Template::ChatML: return "chatml";
    case Template::Mistral: return "mistral";
  }
  return "?";
}

Template detect_template(const Model& model) {
  std::string chat_template, name;
  model_metadata(model, chat_template, name);
  // ChatQA models are trained on the plain-text format whatever template their tokenizer carries.
  if (lower(name).find("chatqa") != std::string::npos) return Template::ChatQA;
  if (chat_template.find("<|start_header_id|>") != std::string::npos) return Template::Llama3;
  if (chat_template.find("<|im_start|>") != std::string::npos) return Template::ChatML;
  if (chat_template.find("[INST]") != std::string::npos) return Template::Mistral;
  return Template::ChatQA;  // plain text: works with base models too
}

RenderedPrompt render_prompt(Template t, const std::string& bos, const std::string& system, const std::string& context,
                             const std::vector<Turn>& turns, const std::string& instruction) {
  if (turns.empty() || turns.back().role != "user") throw Error("a prompt needs a conversation ending with a user turn");
  for (const Turn& turn : turns)
    if (turn.role != "user" && turn.role != "assistant") throw Error("unknown role '" + turn.role + "' (user or assistant)");
  auto user_text = [&](size_t i) {
    const bool first_user = std::none_of(turns.begin(), turns.begin() + static_cast<std::ptrdiff_t>(i),
                                         [](const Turn& x) { return x.role == "user"; });
    return first_user && !instruction.empty() ? instruction + " " + turns[i].content : turns[i].content;
  };
  // The system text and the context, joined as each format joins them.
  const std::string sys_ctx = context.empty() ? system : (system.empty() ? context : system + "\n\n" + context);
  RenderedPrompt p;
  switch (t) {
    case Template::ChatQA:
      p.prefix = bos + "System: " + sys_ctx;
      for (size_t i = 0; i < turns.size(); ++i)
        p.suffix += (turns[i].role == "user" ? "\n\nUser: " + user_text(i) : "\n\nAssistant: " + turns[i].content);
      p.suffix += "\n\nAssistant:";
      break;
    case Template::Llama3:
      p.prefix = bos + "<|start_header_id|>system<|end_header_id|>\n\n" + sys_ctx;
      p.suffix = "<|eot_id|>";
      for (size_t i = 0; i < turns.size(); ++i)
        p.suffix += "<|start_header_id|>" + turns[i].role + "<|end_header_id|>\n\n" +
                    (turns[i].role == "user" ? user_text(i) : turns[i].content) + "<|eot_id|>";
      p.suffix += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case Template::ChatML:
      p.prefix = "<|im_start|>system\n" + sys_ctx;
      p.suffix = "<|im_end|>\n";
      for (size_t i = 0; i < turns.size(); ++i)
        p.suffix += "<|im_start|>" + turns[i].role + "\n" + (turns[i].role == "user" ? user_text(i) : turns[i].content) +
                    "<|im_end|>\n";
      p.suffix += "<|im_start|>assistant\n";
      break;
    case Template::Mistral:
      // Mistral has no system role: system and context open the first [INST].
      p.prefix = bos + "[INST] " + sys_ctx;
      for (size_t i = 0; i < turns.size(); ++i) {
        if (turns[i].role == "user")
          p.suffix += (i == 0 ? "\n\n" : "[INST] ") + user_text(i) + " [/INST]";
        else
          p.suffix += " " + turns[i].content + "</s>";
      }
      break;
  }
  return p;
}

std::vector<std::string> template_stops(Template t) {
  if (t == Template::ChatQA) return {"\n\nUser:"};
  return {};
}

}  // namespace longqa::qa
