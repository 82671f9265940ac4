// A minimal PNG writer: 8-bit RGB, no compression (stored deflate blocks), so it needs no zlib and
// any viewer opens it. Enough for plots of a few hundred pixels a side.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace longqa::eval {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3, row-major
  Image(int w, int h, uint32_t fill);
  void set(int x, int y, uint32_t color);  // 0xRRGGBB; outside the image: ignored
  void fill_rect(int x, int y, int w, int h, uint32_t color);
  // Digits, '.', '%', 'K' and '-' in a 3x5 pixel font, scaled; other characters leave a gap.
  void text(int x, int y, const std::string& s, uint32_t color, int scale = 2);
};

std::string encode_png(const Image& image);
void write_png(const std::string& path, const Image& image);

}  // namespace longqa::eval
