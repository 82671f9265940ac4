// Pretokenizer — splits text into the pieces BPE runs on, with the model's Unicode-aware regex
// (PCRE2 with Unicode properties). Both matches and the gaps between them become pieces, as HF's
// `Split(behavior="Isolated")` does. Invalid UTF-8 is tolerated: such bytes form pieces of their own.
// The compiled pattern is immutable; split() is safe from many threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace longqa {

namespace regex {
// The published pre-tokenizer patterns, by GGUF `tokenizer.ggml.pre` family.
extern const char* const kLlama3;
extern const char* const kQwen2;
extern const char* const kGpt2;
}  // namespace regex

class Pretokenizer {
 public:
  explicit Pretokenizer(const std::string& pattern);
  ~Pretokenizer();
  Pretokenizer(const Pretokenizer&) = delete;
  Pretokenizer& operator=(const Pretokenizer&) = delete;

  // Calls emit(piece) for each piece of text, in order; the pieces concatenate to text.
  template <typename Emit>
  void split(std::string_view text, Emit&& emit) const {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t begin = 0, end = 0;
      if (!next_match(text, pos, begin, end)) break;
      if (begin > pos) emit(text.substr(pos, begin - pos));
      emit(text.substr(begin, end - begin));
      pos = end;
    }
    if (pos < text.size()) emit(text.substr(pos));
  }

  const std::string& pattern() const { return pattern_; }

 private:
  // Finds the next non-empty match at or after pos.
  bool next_match(std::string_view text, size_t pos, size_t& begin, size_t& end) const;

  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8
};

}  // namespace longqa
