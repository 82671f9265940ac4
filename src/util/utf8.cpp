#include "util/utf8.h"

namespace longqa::utf8 {

int sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

char32_t next(std::string_view s, size_t& i) {
  const auto lead = static_cast<uint8_t>(s[i]);
  const int len = sequence_length(lead);
  if (len == 0 || i + static_cast<size_t>(len) > s.size()) {
    ++i;
    return 0xfffd;
  }
  char32_t cp = len == 1 ? lead : lead & (0x7f >> len);
  for (int k = 1; k < len; ++k) {
    const auto c = static_cast<uint8_t>(s[i + static_cast<size_t>(k)]);
    if ((c & 0xc0) != 0x80) {
      ++i;
      return 0xfffd;
    }
    cp = (cp << 6) | (c & 0x3f);
  }
  i += static_cast<size_t>(len);
  return cp;
}

size_t complete_prefix(std::string_view s) {
  // Look back at most 3 bytes for the lead byte of a sequence that runs past the end.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<uint8_t>(s[n - back]);
    if ((c & 0xc0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const int len = sequence_length(c);
    if (len > static_cast<int>(back)) return n - back;  // incomplete tail
    return n;
  }
  return n;
}

}  // namespace longqa::utf8

namespace longqa::utf8 {

size_t first_invalid(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const int len = sequence_length(p[i]);
    if (len < 2 || i + static_cast<size_t>(len) > n) return i;
    // The second byte's range excludes overlong forms, surrogates and code points above U+10FFFF.
    uint8_t lo = 0x80, hi = 0xBF;
    if (p[i] == 0xE0) lo = 0xA0;
    if (p[i] == 0xED) hi = 0x9F;
    if (p[i] == 0xF0) lo = 0x90;
    if (p[i] == 0xF4) hi = 0x8F;
    if (p[i] < 0xC2 || p[i] > 0xF4 || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (int k = 2; k < len; ++k)
      if ((p[i + static_cast<size_t>(k)] & 0xC0) != 0x80) return i;
    i += static_cast<size_t>(len);
  }
  return std::string_view::npos;
}

}  // namespace longqa::utf8
