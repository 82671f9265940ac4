#include "eval/sweep.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "eval/scorers.h"
#include "eval/text_norm.h"
#include "util/error.h"

namespace longqa::eval {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Scores a predictions file with the task's RULER metric.
double score_file(const std::string& path, const std::string& task) {
  std::ifstream in(path);
  std::vector<std::string> preds;
  std::vector<std::vector<std::string>> refs;
  for (std::string line; std::getline(in, line);) {
    const json row = json::parse(line, nullptr, false);
    if (!row.is_object() || !row.contains("pred")) continue;
    preds.push_back(ruler_postprocess(row["pred"].get<std::string>()));
    refs.push_back(row["outputs"].get<std::vector<std::string>>());
  }
  return ruler_uses_part(task) ? string_match_part(preds, refs) : string_match_all(preds, refs);
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// A line chart of long vs RAG over lengths (scores 0..100).
std::string chart_svg(const std::vector<SweepRow>& rows, const std::vector<int64_t>& lengths, const std::string& title) {
  constexpr int kW = 520, kH = 320, kL = 60, kR = 110, kT = 40, kB = 50;
  const int pw = kW - kL - kR, ph = kH - kT - kB;
  auto x_of = [&](size_t i) { return kL + (lengths.size() > 1 ? static_cast<int>(i) * pw / static_cast<int>(lengths.size() - 1) : pw / 2); };
  auto y_of = [&](double score) { return kT + static_cast<int>((100 - score) / 100 * ph); };
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(kW) + "\" height=\"" + std::to_string(kH) +
                    "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + std::to_string(kW / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">" + title + "</text>\n";
  for (int s = 0; s <= 100; s += 25)
    svg += "<line x1=\"" + std::to_string(kL) + "\" x2=\"" + std::to_string(kL + pw) + "\" y1=\"" + std::to_string(y_of(s)) + "\" y2=\"" +
           std::to_string(y_of(s)) + "\" stroke=\"#ddd\"/><text x=\"" + std::to_string(kL - 6) + "\" y=\"" + std::to_string(y_of(s) + 4) +
           "\" text-anchor=\"end\">" + std::to_string(s) + "</text>\n";
  for (size_t i = 0; i < lengths.size(); ++i)
    svg += "<text x=\"" + std::to_string(x_of(i)) + "\" y=\"" + std::to_string(kT + ph + 18) + "\" text-anchor=\"middle\">" +
           std::to_string(lengths[i]) + "</text>\n";
  svg += "<text x=\"" + std::to_string(kL + pw / 2) + "\" y=\"" + std::to_string(kH - 10) + "\" text-anchor=\"middle\">input length (tokens)</text>\n";
  const std::pair<const char*, const char*> series[] = {{"long", "#1a9850"}, {"rag", "#d73027"}};
  int legend = 0;
  for (const auto& [mode, colour] : series) {
    std::string points;
    for (size_t i = 0; i < lengths.size(); ++i)
      for (const SweepRow& r : rows)
        if (r.study == "long-vs-rag" && r.mode == mode && r.length == lengths[i])
          points += std::to_string(x_of(i)) + "," + std::to_string(y_of(r.score)) + " ";
    svg += "<polyline fill=\"none\" stroke=\"" + std::string(colour) + "\" stroke-width=\"2\" points=\"" + points + "\"/>\n";
    svg += "<text x=\"" + std::to_string(kL + pw + 12) + "\" y=\"" + std::to_string(kT + 14 + 18 * legend++) + "\" fill=\"" + colour +
           "\">" + (std::string(mode) == "long" ? "long context" : "RAG") + "</text>\n";
  }
  return svg + "</svg>\n";
}

}  // namespace

std::vector<SweepRow> run_sweep(const Model& model, const SweepOptions& o, const std::function<void(const SweepRow&)>& on_row) {
  if (o.task.rfind("ruler:", 0) != 0) throw Error("eval sweep runs a RULER task (e.g. ruler:niah_multikey_1)");
  if (o.chunk_sizes.empty() || o.lengths.empty()) throw Error("eval sweep: give chunk sizes and lengths");
  const std::string name = o.task.substr(6);
  fs::create_directories(o.out_dir);
  std::vector<SweepRow> rows;
  auto run = [&](SweepRow row) {
    RunOptions r = o.base;
    r.task = o.task;
    r.length = row.length;
    r.samples = o.samples;
    r.mode = row.mode == "long" ? qa::Mode::Long : qa::Mode::Rag;
    r.k = std::max<int64_t>(1, row.k);
    r.chunk_tokens = row.chunk_tokens;
    char file[160];
    std::snprintf(file, sizeof file, "%s-%s-len%lld-chunk%lld-k%lld.jsonl", name.c_str(), row.mode.c_str(),
                  static_cast<long long>(row.length), static_cast<long long>(row.chunk_tokens), static_cast<long long>(row.k));
    r.out = (fs::path(o.out_dir) / file).string();
    run_task(model, r, {});
    row.score = score_file(r.out, name);
    rows.push_back(row);
    if (on_row) on_row(row);
  };
  const int64_t longest = *std::max_element(o.lengths.begin(), o.lengths.end());
  for (int64_t c : o.chunk_sizes) run({"chunking", "rag", longest, c, std::max<int64_t>(1, o.budget / c), 0});
  for (int64_t l : o.lengths) {
    run({"long-vs-rag", "long", l, 1200, 5, 0});
    run({"long-vs-rag", "rag", l, 1200, 5, 0});
  }

  json j = json::array();
  for (const SweepRow& r : rows)
    j.push_back({{"study", r.study}, {"mode", r.mode}, {"length", r.length}, {"chunk_tokens", r.chunk_tokens}, {"k", r.k}, {"score", r.score}});
  std::ofstream(fs::path(o.out_dir) / "sweep.json") << j.dump(1) << "\n";
  std::string md = "# " + o.task + ": " + std::to_string(o.samples) + " samples per cell, " + fs::path(model.path()).filename().string() +
                   "\n\n## Chunk size x top-k at a budget of " + std::to_string(o.budget) + " retrieved tokens (length " +
                   std::to_string(longest) + ")\n\n| chunk tokens | top-k | score |\n| ---: | ---: | ---: |\n";
  for (const SweepRow& r : rows)
    if (r.study == "chunking") md += "| " + std::to_string(r.chunk_tokens) + " | " + std::to_string(r.k) + " | " + fmt(r.score) + " |\n";
  md += "\n## Long context against RAG (1,200-token chunks, top-5)\n\n| input length | long context | RAG |\n| ---: | ---: | ---: |\n";
  for (int64_t l : o.lengths) {
    std::string cells[2];
    for (const SweepRow& r : rows)
      if (r.study == "long-vs-rag" && r.length == l) cells[r.mode == "long" ? 0 : 1] = fmt(r.score);
    md += "| " + std::to_string(l) + " | " + cells[0] + " | " + cells[1] + " |\n";
  }
  std::ofstream(fs::path(o.out_dir) / "sweep.md") << md;
  std::ofstream(fs::path(o.out_dir) / "long-vs-rag.svg") << chart_svg(rows, o.lengths, o.task + ": long context vs RAG");
  return rows;
}

}  // namespace longqa::eval
