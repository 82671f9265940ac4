// The training curves as an SVG image: loss (left axis) and learning rate (right axis) against the
// step, drawn from the run's CSV log (`step,lr,loss,...`). Pure functions.
#pragma once

#include <string>

namespace longqa::train {

// Reads the CSV log at `csv` and writes the plot to `svg`; throws Error naming a malformed line.
void plot_training_log(const std::string& csv, const std::string& svg);

}  // namespace longqa::train
