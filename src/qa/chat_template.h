// Chat templates — how a conversation with a document context becomes the prompt text, for the model
// families longqa serves: the ChatQA format (plain "System:/User:/Assistant:" text, the paper's),
// Llama-3 instruct headers, ChatML (Qwen2) and Mistral's [INST]. The template is recognised from the
// model's metadata (GGUF tokenizer.chat_template, HF tokenizer_config.json, or a ChatQA name) unless
// the user names one. Rendering is split at the end of the context so the context's KV cache can be
// reused across questions. Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "engine/model.h"

namespace longqa::qa {

enum class Template { ChatQA, Llama3, ChatML, Mistral };
Template parse_template(const std::string& name);  // chatqa, llama3, chatml, mistral
const char* template_name(Template t);
Template detect_template(const Model& model);

struct Turn {
  std::string role;  // "user" or "assistant"
  std::string content;
};

struct RenderedPrompt {
  std::string prefix;  // BOS, system and context: the same for every question about the same documents
  std::string suffix;  // the turns and the cue for the assistant's answer
};

constexpr const char* kChatQaSystem =
    "This is a chat between a user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions based on the context. The assistant should also "
    "indicate when the answer cannot be found in the context.";
constexpr const char* kChatQaInstruction = "Please give a full and complete answer for the question.";

// turns: the conversation, ending with the user's question. instruction is prepended to the first
// user turn (ChatQA's convention), bos is the model's BOS token text (empty if none).
RenderedPrompt render_prompt(Template t, const std::string& bos, const std::string& system, const std::string& context,
                             const std::vector<Turn>& turns, const std::string& instruction);

// Stop strings a template needs besides the model's stop tokens (ChatQA: a new "User:" turn).
std::vector<std::string> template_stops(Template t);

}  // namespace longqa::qa
