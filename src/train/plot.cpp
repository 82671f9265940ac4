#include "train/plot.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "util/atomic_file.h"
#include "util/error.h"

namespace longqa::train {

namespace {

std::string polyline(const std::vector<double>& xs, const std::vector<double>& ys, double x0, double x1, double y0, double y1,
                     const char* color) {
  constexpr double kLeft = 60, kTop = 20, kWidth = 560, kHeight = 300;
  std::string points;
  char buf[64];
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = kLeft + (x1 > x0 ? (xs[i] - x0) / (x1 - x0) : 0.5) * kWidth;
    const double y = kTop + kHeight - (y1 > y0 ? (ys[i] - y0) / (y1 - y0) : 0.5) * kHeight;
    std::snprintf(buf, sizeof buf, "%.1f,%.1f ", x, y);
    points += buf;
  }
  return std::string("<polyline fill=\"none\" stroke=\"") + color + "\" stroke-width=\"1.5\" points=\"" + points + "\"/>\n";
}

}  // namespace

void plot_training_log(const std::string& csv, const std::string& svg) {
  std::ifstream in(csv);
  if (!in) throw Error(csv + ": cannot read");
  std::vector<double> steps, lrs, losses;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (number == 1) continue;  // the header
    double step = 0, lr = 0, loss = 0;
    if (std::sscanf(line.c_str(), "%lf,%lf,%lf", &step, &lr, &loss) != 3) throw Error(csv + ":" + std::to_string(number) + ": malformed line");
    steps.push_back(step);
    lrs.push_back(lr);
    losses.push_back(loss);
  }
  if (steps.empty()) throw Error(csv + ": no steps logged");
  const double s0 = steps.front(), s1 = steps.back();
  const double l1 = *std::max_element(losses.begin(), losses.end()), r1 = *std::max_element(lrs.begin(), lrs.end());
  char text[512];
  std::string out =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"680\" height=\"370\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"680\" height=\"370\" fill=\"white\"/>\n"
      "<rect x=\"60\" y=\"20\" width=\"560\" height=\"300\" fill=\"none\" stroke=\"#999\"/>\n";
  out += polyline(steps, losses, s0, s1, 0, l1, "#1f77b4");
  out += polyline(steps, lrs, s0, s1, 0, r1, "#ff7f0e");
  std::snprintf(text, sizeof text,
                "<text x=\"60\" y=\"340\">step %.0f</text><text x=\"620\" y=\"340\" text-anchor=\"end\">step %.0f</text>\n"
                "<text x=\"55\" y=\"25\" text-anchor=\"end\" fill=\"#1f77b4\">%.2f</text>"
                "<text x=\"55\" y=\"320\" text-anchor=\"end\" fill=\"#1f77b4\">0</text>\n"
                "<text x=\"625\" y=\"25\" fill=\"#ff7f0e\">%.1e</text><text x=\"625\" y=\"320\" fill=\"#ff7f0e\">0</text>\n"
                "<text x=\"340\" y=\"362\" text-anchor=\"middle\"><tspan fill=\"#1f77b4\">loss</tspan> (last %.4f) and "
                "<tspan fill=\"#ff7f0e\">learning rate</tspan></text>\n</svg>\n",
                s0, s1, l1, r1, losses.back());
  out += text;
  write_file_atomically(svg, out);
}

}  // namespace longqa::train
