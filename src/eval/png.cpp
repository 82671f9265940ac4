#include "eval/png.h"

#include <array>
#include <fstream>

#include "util/error.h"

namespace longqa::eval {
namespace {

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc = 0) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

void put32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((v >> s) & 0xFF);
}

void chunk(std::string& out, const char* type, const std::string& data) {
  put32(out, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  out += body;
  put32(out, crc32(reinterpret_cast<const uint8_t*>(body.data()), body.size()));
}

// 3x5 glyphs, one row per 3 bits, top row first.
const std::array<uint16_t, 5>* glyph(char c) {
  static const std::array<uint16_t, 5> digits[10] = {
      {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
      {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}};
  static const std::array<uint16_t, 5> dot = {0, 0, 0, 0, 2}, percent = {5, 1, 2, 4, 5}, k = {5, 5, 6, 5, 5},
                                       minus = {0, 0, 7, 0, 0};
  if (c >= '0' && c <= '9') return &digits[c - '0'];
  if (c == '.') return &dot;
  if (c == '%') return &percent;
  if (c == 'K') return &k;
  if (c == '-') return &minus;
  return nullptr;
}

}  // namespace

Image::Image(int w, int h, uint32_t fill) : width(w), height(h), rgb(static_cast<size_t>(w) * static_cast<size_t>(h) * 3) {
  fill_rect(0, 0, w, h, fill);
}

void Image::set(int x, int y, uint32_t color) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  uint8_t* p = &rgb[(static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) * 3];
  p[0] = static_cast<uint8_t>(color >> 16);
  p[1] = static_cast<uint8_t>(color >> 8);
  p[2] = static_cast<uint8_t>(color);
}

void Image::fill_rect(int x, int y, int w, int h, uint32_t color) {
  for (int j = y; j < y + h; ++j)
    for (int i = x; i < x + w; ++i) set(i, j, color);
}

void Image::text(int x, int y, const std::string& s, uint32_t color, int scale) {
  for (char c : s) {
    if (const auto* g = glyph(c))
      for (int row = 0; row < 5; ++row)
        for (int col = 0; col < 3; ++col)
          if ((*g)[static_cast<size_t>(row)] >> (2 - col) & 1) fill_rect(x + col * scale, y + row * scale, scale, scale, color);
    x += 4 * scale;
  }
}

std::string encode_png(const Image& image) {
  std::string out = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put32(ihdr, static_cast<uint32_t>(image.width));
  put32(ihdr, static_cast<uint32_t>(image.height));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no filter choice, no interlace
  chunk(out, "IHDR", ihdr);
  // Scanlines, each led by filter type 0.
  std::string raw;
  const size_t row = static_cast<size_t>(image.width) * 3;
  for (int y = 0; y < image.height; ++y) {
    raw += '\0';
    raw.append(reinterpret_cast<const char*>(&image.rgb[static_cast<size_t>(y) * row]), row);
  }
  // zlib stream of stored deflate blocks.
  std::string z = "\x78\x01";
  for (size_t at = 0; at < raw.size() || at == 0;) {
    const size_t n = std::min<size_t>(65535, raw.size() - at);
    const bool last = at + n >= raw.size();
    z += static_cast<char>(last ? 1 : 0);
    z += static_cast<char>(n & 0xFF);
    z += static_cast<char>(n >> 8);
    z += static_cast<char>(~n & 0xFF);
    z += static_cast<char>((~n >> 8) & 0xFF);
    z.append(raw, at, n);
    at += n;
    if (last) break;
  }
  uint32_t a = 1, b = 0;  // Adler-32
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  put32(z, b << 16 | a);
  chunk(out, "IDAT", z);
  chunk(out, "IEND", "");
  return out;
}

void write_png(const std::string& path, const Image& image) {
  std::ofstream out(path, std::ios::binary);
  const std::string png = encode_png(image);
  out.write(png.data(), static_cast<std::streamsize>(png.size()));
  if (!out) throw Error(path + ": cannot write");
}

}  // namespace longqa::eval
