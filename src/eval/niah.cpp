#include "eval/niah.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "eval/heatmap.h"
#include "eval/text_norm.h"
#include "qa/conversation.h"
#include "util/error.h"
#include "util/sha256.h"

namespace longqa::eval {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// What identifies a run's configuration, so that a resumed run never mixes in another's rows.
std::string config_key(const Model& model, const NiahOptions& o) {
  Sha256 h;
  for (const std::string& part : {model.path(), o.needle, o.question, o.answer, std::string(qa::route_name(qa::Route::Long)),
                                  std::to_string(static_cast<int>(o.mode)), std::to_string(o.buffer), std::to_string(o.max_tokens)})
    h.update(part + "\x1f");
  for (const std::string& f : o.haystack) h.update(f + "\x1f");
  return h.hex().substr(0, 16);
}

std::vector<int32_t> haystack_tokens(const Tokenizer& tok, std::vector<std::string> files, int64_t need) {
  if (files.empty()) throw Error("niah: no haystack files (--haystack FILE...)");
  std::sort(files.begin(), files.end());
  std::string text;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw Error(f + ": cannot open");
    text += std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) throw Error("niah: the haystack files hold no text");
  std::vector<int32_t> one = tok.encode(text, false), all;
  while (static_cast<int64_t>(all.size()) < need) all.insert(all.end(), one.begin(), one.end());
  return all;
}

}  // namespace

std::string niah_context(const Tokenizer& tok, const std::vector<int32_t>& haystack, const std::vector<int32_t>& needle,
                         int64_t context_tokens, double depth) {
  if (context_tokens <= static_cast<int64_t>(needle.size()))
    throw Error("niah: a context of " + std::to_string(context_tokens) + " tokens cannot hold the needle");
  std::vector<int32_t> ctx(haystack.begin(), haystack.begin() + std::min<int64_t>(static_cast<int64_t>(haystack.size()),
                                                                              context_tokens - static_cast<int64_t>(needle.size())));
  std::vector<int32_t> out;
  if (depth >= 100) {
    out = ctx;
    out.insert(out.end(), needle.begin(), needle.end());
  } else {
    const std::vector<int32_t> period = tok.encode(".", false);
    auto at = static_cast<size_t>(static_cast<double>(ctx.size()) * (depth / 100));
    while (at > 0 && std::find(period.begin(), period.end(), ctx[at - 1]) == period.end()) --at;
    out.assign(ctx.begin(), ctx.begin() + static_cast<std::ptrdiff_t>(at));
    out.insert(out.end(), needle.begin(), needle.end());
    out.insert(out.end(), ctx.begin() + static_cast<std::ptrdiff_t>(at), ctx.end());
  }
  return tok.decode(out);
}

NiahReport run_niah(const Model& model, const NiahOptions& o,
                    const std::function<void(const NiahCell&, size_t, size_t)>& on_cell) {
  if (o.lengths.empty() || o.depths.empty()) throw Error("niah: give at least one length and one depth");
  for (int64_t l : o.lengths)
    if (l <= o.buffer + 16) throw Error("niah: length " + std::to_string(l) + " leaves no room beside the " + std::to_string(o.buffer) + "-token buffer");
  for (double d : o.depths)
    if (d < 0 || d > 100) throw Error("niah: depths are percentages from 0 to 100");
  const Tokenizer& tok = model.tokenizer();
  const int64_t longest = *std::max_element(o.lengths.begin(), o.lengths.end());
  if (longest > model.config().context_length)
    throw Error("niah: length " + std::to_string(longest) + " exceeds the model's context of " + std::to_string(model.config().context_length));
  const std::vector<int32_t> haystack = haystack_tokens(tok, o.haystack, longest);
  const std::vector<int32_t> needle = tok.encode(o.needle, false);
  const std::string key = config_key(model, o);

  // Rows of an earlier run with this configuration.
  fs::create_directories(o.out_dir);
  const std::string rows_path = (fs::path(o.out_dir) / "niah.jsonl").string();
  std::vector<NiahCell> done;
  {
    std::ifstream in(rows_path);
    for (std::string line; std::getline(in, line);) {
      const json j = json::parse(line, nullptr, false);
      if (!j.is_object() || j.value("config", "") != key) continue;  // another configuration, or a torn last line
      done.push_back({j.value("length", int64_t{0}), j.value("depth", 0.0), j.value("score", 0.0), j.value("pred", ""), j.value("route", "")});
    }
  }
  std::ofstream rows(rows_path, std::ios::app);
  if (!rows) throw Error(rows_path + ": cannot write");

  qa::PromptCache cache;  // cells of one length share their prefix up to the needle
  NiahReport report;
  const size_t total = o.lengths.size() * o.depths.size();
  for (int64_t length : o.lengths) {
    for (double depth : o.depths) {
      const auto prior = std::find_if(done.begin(), done.end(), [&](const NiahCell& c) { return c.length == length && c.depth == depth; });
      if (prior != done.end()) {
        report.cells.push_back(*prior);
        continue;
      }
      qa::AskOptions a;
      a.texts.push_back({"haystack", niah_context(tok, haystack, needle, length - o.buffer, depth), {}});
      a.mode = o.mode;
      // The length is the whole window (the buffer holds the prompt around the haystack); in auto mode
      // the router compares the prompt with it, in long mode the haystack goes in regardless.
      a.long_budget = o.mode == qa::Mode::Long ? model.config().context_length : length;
      a.generation.max_tokens = o.max_tokens;  // greedy: sampling defaults to temperature 0
      a.kv_type = o.kv_type;
      a.threads = o.threads;
      qa::Conversation conversation(model, a, {}, &cache);
      const qa::AskResult r = conversation.ask(o.question);
      NiahCell cell{length, depth, py_lower(r.answer).find(py_lower(o.answer)) != std::string::npos ? 1.0 : 0.0, r.answer,
                    qa::route_name(r.route)};
      rows << json{{"config", key}, {"length", length}, {"depth", depth}, {"score", cell.score}, {"pred", cell.pred}, {"route", cell.route}}
                  .dump(-1, ' ', false, json::error_handler_t::replace)
           << "\n";
      rows.flush();  // a killed run keeps every finished cell
      report.cells.push_back(cell);
      if (on_cell) on_cell(cell, report.cells.size(), total);
    }
  }
  double sum = 0;
  for (const NiahCell& c : report.cells) sum += c.score;
  report.accuracy = sum / static_cast<double>(report.cells.size());

  std::vector<HeatmapCell> heat;
  for (const NiahCell& c : report.cells) heat.push_back({c.length, c.depth, c.score});
  char title[128];
  std::snprintf(title, sizeof title, "Needle in a haystack: %s, accuracy %.1f%%", fs::path(model.path()).filename().string().c_str(),
                report.accuracy * 100);
  std::ofstream(fs::path(o.out_dir) / "heatmap.svg") << heatmap_svg(heat, title);
  write_png((fs::path(o.out_dir) / "heatmap.png").string(), heatmap_png(heat));
  return report;
}

}  // namespace longqa::eval
