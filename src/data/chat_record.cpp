#include "data/chat_record.h"

#include "data/jsonl_records.h"

namespace longqa::data {

using json = nlohmann::json;


std::string parse_chat_record(const json& rec, ChatRecord& out) {
  out = {};
  if (const json* m = lookup(rec, "messages"); m && m->is_array()) {
    for (const json& msg : *m) {
      const std::string* role = string_at(msg, "role");
      const std::string* content = string_at(msg, "content");
      if (!role || !content) return "a message without a string role and content";
      if (*role == "system") out.system = *content;
      else if (*role == "user" || *role == "assistant") out.turns.push_back({*role, *content});
      else return "unknown role '" + *role + "'";
    }
    // ChatQA's training data keeps the target in "answers" after a final user turn.
    if (const json* answers = lookup(rec, "answers"); !out.turns.empty() && out.turns.back().role == "user" && answers &&
                                                       answers->is_array() && !answers->empty() && (*answers)[0].is_string())
      out.turns.push_back({"assistant", (*answers)[0].get<std::string>()});
    for (const char* key : {"document", "context"})
      if (const std::string* d = string_at(rec, key)) out.context = *d;
    if (out.turns.size() < 2 || out.turns.back().role != "assistant") return "the conversation does not end with an assistant turn";
    return "";
  }
  const std::string *in = string_at(rec, "input"), *output = string_at(rec, "output");
  if (!in || !output) return "neither 'messages' nor 'input'/'output'";
  out.prompt_given = true;
  out.input = *in;
  out.output = *output;
  return "";
}

std::pair<std::string, std::string> chatqa_prompt(const ChatRecord& r) {
  if (r.prompt_given) return {r.input, r.output};
  const std::vector<qa::Turn> asked(r.turns.begin(), r.turns.end() - 1);
  const qa::RenderedPrompt p = qa::render_prompt(qa::Template::ChatQA, "", r.system, r.context, asked, "");
  return {p.prefix + p.suffix, r.turns.back().content};
}

}  // namespace longqa::data
