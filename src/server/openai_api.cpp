#include "server/openai_api.h"

#include <random>

#include "util/error.h"

namespace longqa::server {
namespace {

using nlohmann::json;

std::string text_of(const json& content, const std::string& where) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {  // [{"type": "text", "text": "..."}]
    std::string out;
    for (const json& part : content) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
        throw Error(where + ": only text content parts are supported");
      out += part["text"].get<std::string>();
    }
    return out;
  }
  throw Error(where + ": content must be a string or an array of text parts");
}

template <class T>
T number(const json& body, const char* key, T fallback, T lo, T hi) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_number()) throw Error(std::string("'") + key + "' must be a number");
  const T v = it->get<T>();
  if (v < lo || v > hi) throw Error(std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return v;
}

// The sampling and length fields shared by chat and text completions.
GenerateOptions generation_options(const json& body, int64_t default_max_tokens) {
  GenerateOptions g;
  int64_t max_tokens = number<int64_t>(body, "max_tokens", default_max_tokens, 1, int64_t{1} << 30);
  max_tokens = number<int64_t>(body, "max_completion_tokens", max_tokens, 1, int64_t{1} << 30);
  g.max_tokens = max_tokens;
  g.sampling.temperature = number<float>(body, "temperature", 1.0f, 0.0f, 2.0f);  // OpenAI's default is 1
  g.sampling.top_p = number<float>(body, "top_p", 1.0f, 0.0f, 1.0f);
  const auto seed = body.find("seed");
  g.sampling.seed = seed != body.end() && seed->is_number_integer() ? seed->get<uint64_t>() : std::random_device{}();
  if (const auto n = body.find("n"); n != body.end() && !n->is_null() && *n != 1) throw Error("only n = 1 is supported");
  if (const auto stop = body.find("stop"); stop != body.end() && !stop->is_null()) {
    if (stop->is_string()) {
      g.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array() && stop->size() <= 4) {
      for (const json& s : *stop) {
        if (!s.is_string()) throw Error("'stop' must be a string or up to 4 strings");
        g.stop.push_back(s.get<std::string>());
      }
    } else {
      throw Error("'stop' must be a string or up to 4 strings");
    }
    for (const std::string& s : g.stop)
      if (s.empty()) throw Error("'stop' strings must not be empty");
  }
  return g;
}

bool include_usage(const json& body) {
  const auto o = body.find("stream_options");
  return o != body.end() && o->is_object() && o->value("include_usage", false);
}

}  // namespace

ChatRequest parse_chat_request(const json& body, int64_t default_max_tokens) {
  if (!body.is_object()) throw Error("the request body must be a JSON object");
  const auto messages = body.find("messages");
  if (messages == body.end() || !messages->is_array() || messages->empty())
    throw Error("'messages' must be a non-empty array");
  ChatRequest r;
  std::vector<qa::Turn> turns;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) throw Error(where + ": needs a 'role'");
    const std::string role = m["role"].get<std::string>();
    const std::string content = text_of(m.contains("content") ? m["content"] : json(), where);
    if (role == "system" || role == "developer")
      r.system = r.system ? *r.system + "\n\n" + content : content;
    else if (role == "user" || role == "assistant")
      turns.push_back({role, content});
    else
      throw Error(where + ": role '" + role + "' is not supported (system, user, assistant)");
  }
  if (turns.empty() || turns.back().role != "user") throw Error("the last message must be the user's");
  r.question = turns.back().content;
  turns.pop_back();
  r.history = std::move(turns);
  r.generation = generation_options(body, default_max_tokens);
  r.stream = body.value("stream", false);
  r.include_usage = include_usage(body);
  if (const auto ext = body.find("longqa"); ext != body.end() && !ext->is_null()) {
    if (!ext->is_object()) throw Error("'longqa' must be an object");
    r.longqa = true;
    r.mode = qa::parse_mode(ext->value("mode", "auto"));
    if (const auto docs = ext->find("documents"); docs != ext->end()) {
      if (!docs->is_array()) throw Error("'longqa.documents' must be an array of paths");
      for (const json& d : *docs) {
        if (!d.is_string()) throw Error("'longqa.documents' must be an array of paths");
        r.documents.push_back(d.get<std::string>());
      }
    }
    r.use_index = ext->value("index", false);
    if (r.use_index && !r.documents.empty()) throw Error("'longqa': give documents or index, not both");
    if (ext->contains("k")) r.k = number<int64_t>(*ext, "k", 5, 1, 100);
    if (ext->contains("chunk_order")) {
      const json& order = (*ext)["chunk_order"];
      if (!order.is_string()) throw Error("'longqa.chunk_order' must be \"best-first\" or \"best-last\"");
      r.chunk_order = qa::parse_chunk_order(order.get<std::string>());
    }
  }
  return r;
}

CompletionRequest parse_completion_request(const json& body, int64_t default_max_tokens) {
  if (!body.is_object()) throw Error("the request body must be a JSON object");
  CompletionRequest r;
  const auto prompt = body.find("prompt");
  if (prompt == body.end()) throw Error("'prompt' is required");
  if (prompt->is_string())
    r.prompt = prompt->get<std::string>();
  else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string())
    r.prompt = (*prompt)[0].get<std::string>();
  else
    throw Error("'prompt' must be a string");
  if (r.prompt.empty()) throw Error("'prompt' must not be empty");
  r.generation = generation_options(body, default_max_tokens);
  r.stream = body.value("stream", false);
  r.include_usage = include_usage(body);
  return r;
}

std::vector<std::string> parse_embedding_input(const json& body) {
  if (!body.is_object() || !body.contains("input")) throw Error("'input' is required");
  const json& in = body["input"];
  std::vector<std::string> out;
  if (in.is_string()) {
    out.push_back(in.get<std::string>());
  } else if (in.is_array() && !in.empty() && in.size() <= 2048) {
    for (const json& s : in) {
      if (!s.is_string()) throw Error("'input' must be a string or an array of strings");
      out.push_back(s.get<std::string>());
    }
  } else {
    throw Error("'input' must be a string or an array of 1 to 2048 strings");
  }
  for (const std::string& s : out)
    if (s.empty()) throw Error("'input' strings must not be empty");
  return out;
}

Json longqa_extension(const qa::AskResult& r) {
  Json citations = Json::array();
  for (const qa::Citation& c : r.citations)
    citations.push_back({{"doc", c.doc},
                         {"page", c.page > 0 ? Json(c.page) : Json(nullptr)},
                         {"chunk", c.chunk >= 0 ? Json(c.chunk) : Json(nullptr)}});
  return {{"route", qa::route_name(r.route)}, {"route_reason", r.route_reason}, {"citations", citations}};
}

Json usage(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens}, {"total_tokens", prompt_tokens + completion_tokens}};
}

Json chat_completion(const std::string& id, const std::string& model, int64_t created, const qa::AskResult& r,
                     bool with_extension) {
  Json j = {{"id", id},
            {"object", "chat.completion"},
            {"created", created},
            {"model", model},
            {"choices",
             Json::array({{{"index", 0},
                           {"message", {{"role", "assistant"}, {"content", r.answer}}},
                           {"logprobs", nullptr},
                           {"finish_reason", r.finish_reason}}})},
            {"usage", usage(r.prompt_tokens, r.completion_tokens)}};
  if (with_extension) j["longqa"] = longqa_extension(r);
  return j;
}

Json chat_chunk(const std::string& id, const std::string& model, int64_t created, const std::string& role,
                const std::string& content, const std::string& finish_reason) {
  Json delta = Json::object();
  if (!role.empty()) delta["role"] = role;
  if (!content.empty() || !role.empty()) delta["content"] = content;
  return {{"id", id},
          {"object", "chat.completion.chunk"},
          {"created", created},
          {"model", model},
          {"choices", Json::array({{{"index", 0},
                                    {"delta", delta},
                                    {"logprobs", nullptr},
                                    {"finish_reason", finish_reason.empty() ? Json(nullptr) : Json(finish_reason)}}})}};
}

Json text_completion(const std::string& id, const std::string& model, int64_t created, const GenerateResult& r) {
  return {{"id", id},
          {"object", "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", Json::array({{{"index", 0}, {"text", r.text}, {"logprobs", nullptr}, {"finish_reason", r.finish_reason}}})},
          {"usage", usage(r.prompt_tokens, r.completion_tokens)}};
}

Json text_chunk(const std::string& id, const std::string& model, int64_t created, const std::string& text,
                const std::string& finish_reason) {
  return {{"id", id},
          {"object", "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", Json::array({{{"index", 0},
                                    {"text", text},
                                    {"logprobs", nullptr},
                                    {"finish_reason", finish_reason.empty() ? Json(nullptr) : Json(finish_reason)}}})}};
}

Json error_body(const std::string& message, const std::string& type, int code) {
  return {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code}}}};
}

std::string base64(std::string_view bytes) {
  static const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k) v = v << 8 | (k < n ? static_cast<uint8_t>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? digits[(v >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace longqa::server
