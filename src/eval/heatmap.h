// The needle-in-a-haystack heatmap: context length across, needle depth down (0% at the top), each
// cell coloured by its score from red (0) through yellow to green (1), as the public plots draw it.
// SVG with labels and values; PNG with tick labels. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eval/png.h"

namespace longqa::eval {

struct HeatmapCell {
  int64_t length;
  double depth;
  double score;  // 0..1
};

uint32_t score_color(double score);  // 0xRRGGBB
std::string heatmap_svg(const std::vector<HeatmapCell>& cells, const std::string& title);
Image heatmap_png(const std::vector<HeatmapCell>& cells);

}  // namespace longqa::eval
