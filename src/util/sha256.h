// SHA-256 (FIPS 180-4), used to recognise unchanged documents by content. Incremental: update() any
// number of times, then hex(). Not thread-safe per object; objects are independent.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace longqa {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  std::string hex();  // finishes the digest; the object must not be updated afterwards

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t length_ = 0;
};

inline std::string sha256_hex(std::string_view bytes) {
  Sha256 s;
  s.update(bytes);
  return s.hex();
}

}  // namespace longqa
