#include "eval/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace longqa::eval {
namespace {

constexpr int kCellW = 64, kCellH = 32, kLeft = 80, kTop = 50, kBottom = 60, kRight = 20;

struct Grid {
  std::vector<int64_t> lengths;
  std::vector<double> depths;
  std::map<std::pair<size_t, size_t>, double> score;  // (row, col) -> score
};

Grid grid_of(const std::vector<HeatmapCell>& cells) {
  Grid g;
  for (const HeatmapCell& c : cells) {
    g.lengths.push_back(c.length);
    g.depths.push_back(c.depth);
  }
  std::sort(g.lengths.begin(), g.lengths.end());
  g.lengths.erase(std::unique(g.lengths.begin(), g.lengths.end()), g.lengths.end());
  std::sort(g.depths.begin(), g.depths.end());
  g.depths.erase(std::unique(g.depths.begin(), g.depths.end()), g.depths.end());
  for (const HeatmapCell& c : cells) {
    const auto col = static_cast<size_t>(std::find(g.lengths.begin(), g.lengths.end(), c.length) - g.lengths.begin());
    const auto row = static_cast<size_t>(std::find(g.depths.begin(), g.depths.end(), c.depth) - g.depths.begin());
    g.score[{row, col}] = c.score;
  }
  return g;
}

std::string length_label(int64_t n) {
  return n % 1024 == 0 ? std::to_string(n / 1024) + "K" : std::to_string(n);
}

std::string depth_label(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g%%", d);
  return buf;
}

std::string hex(uint32_t c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%06x", c);
  return buf;
}

}  // namespace

uint32_t score_color(double s) {
  s = std::clamp(s, 0.0, 1.0);
  // Two linear pieces: red (0xd7,0x30,0x27) -> yellow (0xfe,0xe0,0x8b) -> green (0x1a,0x98,0x50).
  const double lo[3] = {0xd7, 0x30, 0x27}, mid[3] = {0xfe, 0xe0, 0x8b}, hi[3] = {0x1a, 0x98, 0x50};
  uint32_t c = 0;
  for (int k = 0; k < 3; ++k) {
    const double v = s < 0.5 ? lo[k] + (mid[k] - lo[k]) * s * 2 : mid[k] + (hi[k] - mid[k]) * (s - 0.5) * 2;
    c = c << 8 | static_cast<uint32_t>(std::lround(v));
  }
  return c;
}

std::string heatmap_svg(const std::vector<HeatmapCell>& cells, const std::string& title) {
  const Grid g = grid_of(cells);
  const int w = kLeft + kCellW * static_cast<int>(g.lengths.size()) + kRight;
  const int h = kTop + kCellH * static_cast<int>(g.depths.size()) + kBottom;
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(w) + "\" height=\"" + std::to_string(h) +
                    "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  std::string escaped;
  for (char c : title) escaped += c == '<' ? "&lt;" : c == '&' ? "&amp;" : c == '>' ? "&gt;" : std::string(1, c);
  svg += "<text x=\"" + std::to_string(w / 2) + "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">" + escaped + "</text>\n";
  for (size_t r = 0; r < g.depths.size(); ++r) {
    const int y = kTop + kCellH * static_cast<int>(r);
    svg += "<text x=\"" + std::to_string(kLeft - 8) + "\" y=\"" + std::to_string(y + kCellH / 2 + 4) +
           "\" text-anchor=\"end\">" + depth_label(g.depths[r]) + "</text>\n";
    for (size_t c = 0; c < g.lengths.size(); ++c) {
      const int x = kLeft + kCellW * static_cast<int>(c);
      const auto it = g.score.find({r, c});
      const std::string fill = it == g.score.end() ? "#dddddd" : hex(score_color(it->second));
      svg += "<rect x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y) + "\" width=\"" + std::to_string(kCellW) +
             "\" height=\"" + std::to_string(kCellH) + "\" fill=\"" + fill + "\" stroke=\"white\"/>\n";
      if (it != g.score.end()) {
        char value[16];
        std::snprintf(value, sizeof value, "%.2g", it->second);
        svg += "<text x=\"" + std::to_string(x + kCellW / 2) + "\" y=\"" + std::to_string(y + kCellH / 2 + 4) +
               "\" text-anchor=\"middle\" font-size=\"11\">" + value + "</text>\n";
      }
    }
  }
  const int axis_y = kTop + kCellH * static_cast<int>(g.depths.size());
  for (size_t c = 0; c < g.lengths.size(); ++c)
    svg += "<text x=\"" + std::to_string(kLeft + kCellW * static_cast<int>(c) + kCellW / 2) + "\" y=\"" + std::to_string(axis_y + 18) +
           "\" text-anchor=\"middle\">" + length_label(g.lengths[c]) + "</text>\n";
  svg += "<text x=\"" + std::to_string(kLeft + kCellW * static_cast<int>(g.lengths.size()) / 2) + "\" y=\"" +
         std::to_string(axis_y + 42) + "\" text-anchor=\"middle\">context length (tokens)</text>\n";
  svg += "<text x=\"16\" y=\"" + std::to_string(kTop + kCellH * static_cast<int>(g.depths.size()) / 2) +
         "\" text-anchor=\"middle\" transform=\"rotate(-90 16 " + std::to_string(kTop + kCellH * static_cast<int>(g.depths.size()) / 2) +
         ")\">needle depth</text>\n</svg>\n";
  return svg;
}

Image heatmap_png(const std::vector<HeatmapCell>& cells) {
  const Grid g = grid_of(cells);
  const int w = kLeft + kCellW * static_cast<int>(g.lengths.size()) + kRight;
  const int h = kTop + kCellH * static_cast<int>(g.depths.size()) + kBottom;
  Image img(w, h, 0xFFFFFF);
  for (size_t r = 0; r < g.depths.size(); ++r) {
    const int y = kTop + kCellH * static_cast<int>(r);
    const std::string label = depth_label(g.depths[r]);
    img.text(kLeft - 8 - static_cast<int>(label.size()) * 8, y + kCellH / 2 - 5, label, 0x333333);
    for (size_t c = 0; c < g.lengths.size(); ++c) {
      const auto it = g.score.find({r, c});
      img.fill_rect(kLeft + kCellW * static_cast<int>(c) + 1, y + 1, kCellW - 2, kCellH - 2,
                    it == g.score.end() ? 0xDDDDDD : score_color(it->second));
    }
  }
  const int axis_y = kTop + kCellH * static_cast<int>(g.depths.size());
  for (size_t c = 0; c < g.lengths.size(); ++c) {
    const std::string label = length_label(g.lengths[c]);
    img.text(kLeft + kCellW * static_cast<int>(c) + kCellW / 2 - static_cast<int>(label.size()) * 4, axis_y + 10, label, 0x333333);
  }
  return img;
}

}  // namespace longqa::eval
