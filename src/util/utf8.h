// UTF-8 helpers shared by the tokenizers and the streaming text decoder.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace longqa::utf8 {

// Length of the sequence that `lead` starts (1..4), or 0 for a byte that cannot start one.
int sequence_length(uint8_t lead);

// Appends the UTF-8 encoding of a code point.
void append(std::string& out, char32_t cp);

// Decodes the code point at s[i], advancing i. Invalid bytes decode as U+FFFD and advance by one.
char32_t next(std::string_view s, size_t& i);

// Length of the longest prefix of `s` that does not end inside an incomplete (but so far valid)
// multi-byte sequence: what a streaming printer may emit now without splitting a character.
size_t complete_prefix(std::string_view s);

// Offset of the first byte that is not part of a well-formed UTF-8 sequence (overlong forms,
// surrogates and code points above U+10FFFF are ill-formed), or std::string_view::npos.
size_t first_invalid(std::string_view s);

}  // namespace longqa::utf8
