#include "eval/ruler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <random>

#include "util/error.h"

namespace longqa::eval {
namespace {

// RULER's templates (scripts/data/synthetic/constants.py).
constexpr const char* kNiahTemplate =
    "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will quiz "
    "you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} for {query} "
    "mentioned in the provided text?";
constexpr const char* kNiahAnswerPrefix = " The special magic {type_needle_v} for {query} mentioned in the provided text are";
constexpr const char* kNeedle = "One of the special magic {type_needle_v} for {key} is: {value}.";
constexpr const char* kVtTemplate =
    "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\nQuestion: Find "
    "all variables that are assigned the value {query} in the text above.";
constexpr const char* kVtAnswerPrefix =
    " Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables are assigned the "
    "value {query}, they are: ";
constexpr const char* kCweTemplate =
    "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that "
    "appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list?";
constexpr const char* kCweAnswerPrefix = " Answer: The top 10 words that appear most often in the list are:";
constexpr const char* kFweTemplate =
    "Read the following coded text and track the frequency of each coded word. Find the three most frequently "
    "appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What "
    "are the three most frequently appeared words in the above coded text?";
constexpr const char* kFweAnswerPrefix = " Answer: According to the coded text above, the three most frequently appeared words are:";
constexpr const char* kNoise = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

const std::vector<std::string> kAdjectives = {
    "abundant", "acidic", "adorable", "aggressive", "agreeable", "alive", "ancient", "angry", "anxious", "arrogant",
    "ashamed", "attractive", "bashful", "beautiful", "bewildered", "bitter", "bizarre", "black", "bloody", "blue",
    "bored", "brave", "breezy", "bright", "broad", "broken", "bumpy", "calm", "careful", "cheerful", "chilly", "clever",
    "cloudy", "clumsy", "colossal", "cool", "crooked", "cuddly", "curly", "curved", "damaged", "damp", "deafening",
    "deep", "defeated", "delicious", "delightful", "dirty", "dizzy", "dry", "dusty", "eager", "early", "elegant",
    "embarrassed", "empty", "faint", "faithful", "famous", "fancy", "fierce", "filthy", "flaky", "flat", "fluffy",
    "fragile", "frantic", "friendly", "frightened", "gentle", "giant", "gigantic", "glamorous", "gleaming", "glorious",
    "gorgeous", "graceful", "greasy", "grumpy", "handsome", "happy", "harsh", "heavy", "helpful", "hollow", "homeless",
    "hungry", "icy", "immense", "itchy", "jealous", "jolly", "juicy", "kind", "large", "lazy", "little", "lively"};
const std::vector<std::string> kNouns = {
    "actor", "airport", "anchor", "apple", "arch", "badge", "bakery", "balloon", "bamboo", "banana", "barn", "basket",
    "beach", "beard", "bench", "bicycle", "blanket", "bottle", "bracelet", "bridge", "brush", "bucket", "butter",
    "cabin", "cactus", "camera", "candle", "canoe", "carpet", "castle", "cellar", "chair", "channel", "cherry",
    "chimney", "circle", "cliff", "clock", "cloud", "coconut", "coffee", "collar", "comet", "compass", "cookie",
    "copper", "cottage", "cradle", "crayon", "crystal", "curtain", "cushion", "dagger", "desert", "diamond", "dolphin",
    "donkey", "dragon", "drawer", "eagle", "engine", "envelope", "falcon", "feather", "fence", "ferry", "fiddle",
    "forest", "fountain", "garden", "garlic", "glacier", "goblet", "guitar", "hammer", "harbor", "helmet", "honey",
    "island", "jacket", "kettle", "ladder", "lantern", "lemon", "library", "lighthouse", "magnet", "marble", "meadow",
    "mirror", "monkey", "needle", "orchard", "oyster", "paddle", "parrot", "pebble", "pencil", "pepper"};

std::string fill(std::string t, const std::map<std::string, std::string>& values) {
  for (const auto& [k, v] : values)
    for (size_t at = t.find("{" + k + "}"); at != std::string::npos; at = t.find("{" + k + "}", at + v.size()))
      t.replace(at, k.size() + 2, v);
  return t;
}

struct Parts {
  std::string before, after;
};
Parts split_template(const std::string& filled) {
  const size_t at = filled.find("{context}");
  return {filled.substr(0, at), filled.substr(at + 9)};
}

std::string number7(std::mt19937_64& rng) { return std::to_string(1000000 + rng() % 9000000); }
std::string uuid(std::mt19937_64& rng) {
  char buf[40];
  const uint64_t a = rng(), b = rng();
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32), static_cast<unsigned>(a >> 16) & 0xFFFF,
                static_cast<unsigned>(a) & 0xFFF, static_cast<unsigned>(0x8000 | (b >> 48 & 0x3FFF)),
                static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFull));
  return buf;
}
std::string word_key(std::mt19937_64& rng) {
  return kAdjectives[rng() % kAdjectives.size()] + "-" + kNouns[rng() % kNouns.size()];
}
std::string letters(std::mt19937_64& rng, int n, char base) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>(base + static_cast<int>(rng() % 26));
  return s;
}

struct Spec {
  std::string task;             // niah, variable_tracking, common_words_extraction, freq_words_extraction
  std::string haystack = "essay";  // noise, essay, needle
  std::string key = "words", value = "numbers";
  int num_k = 1, num_v = 1, num_q = 1;
};

const std::map<std::string, Spec>& specs() {
  static const std::map<std::string, Spec> m = {
      {"niah_single_1", {"niah", "noise", "words", "numbers"}},
      {"niah_single_2", {"niah", "essay", "words", "numbers"}},
      {"niah_single_3", {"niah", "essay", "words", "uuids"}},
      {"niah_multikey_1", {"niah", "essay", "words", "numbers", 4}},
      {"niah_multikey_2", {"niah", "needle", "words", "numbers"}},
      {"niah_multikey_3", {"niah", "needle", "uuids", "uuids"}},
      {"niah_multivalue", {"niah", "essay", "words", "numbers", 1, 4}},
      {"niah_multiquery", {"niah", "essay", "words", "numbers", 1, 1, 4}},
      {"vt", {"variable_tracking", "noise"}},
      {"cwe", {"common_words_extraction"}},
      {"fwe", {"freq_words_extraction"}},
  };
  return m;
}

// The largest size (haystack units) whose sample fits `budget` tokens, by bisection over a builder.
RulerSample fit(const std::function<RulerSample(int64_t)>& build, const Tokenizer& tok, int64_t budget) {
  auto tokens = [&](RulerSample& s) {
    s.tokens = static_cast<int64_t>(tok.encode(s.before + s.context + s.after, false).size());
    return s.tokens;
  };
  RulerSample best = build(1);
  if (tokens(best) > budget)
    throw Error("ruler: the smallest sample of this task needs " + std::to_string(best.tokens) + " tokens; the length leaves " +
                std::to_string(budget) + " (raise --length)");
  int64_t lo = 1, hi = 2;
  for (;; hi *= 2) {
    RulerSample s = build(hi);
    const int64_t before = best.tokens;
    if (tokens(s) > budget) break;
    best = std::move(s);
    lo = hi;
    if (best.tokens <= before || hi >= (int64_t{1} << 24)) return best;  // it does not grow any more
  }
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    RulerSample s = build(mid);
    if (tokens(s) <= budget) best = std::move(s), lo = mid;
    else hi = mid;
  }
  return best;
}

}  // namespace

std::vector<std::string> ruler_tasks() {
  std::vector<std::string> out;
  for (const auto& [name, spec] : specs()) out.push_back(name);
  return out;
}

int64_t ruler_tokens_to_generate(const std::string& task) {
  const auto it = specs().find(task);
  if (it == specs().end()) throw Error("unknown RULER task '" + task + "'");
  const std::string& t = it->second.task;
  return t == "niah" ? 128 : t == "variable_tracking" ? 30 : t == "common_words_extraction" ? 120 : 50;
}

RulerSample make_ruler_sample(const std::string& task, int64_t index, int64_t max_tokens, const Tokenizer& tok,
                              const std::string& essay) {
  const auto it = specs().find(task);
  if (it == specs().end()) throw Error("unknown RULER task '" + task + "' (known: niah_single_1..3, niah_multikey_1..3, niah_multivalue, niah_multiquery, vt, cwe, fwe)");
  const Spec& spec = it->second;
  const int64_t budget = max_tokens - ruler_tokens_to_generate(task);
  const uint64_t seed = std::hash<std::string>{}(task) ^ (static_cast<uint64_t>(index) * 0x9E3779B97F4A7C15ull);
  const std::vector<std::string> essay_words = [&] {
    std::vector<std::string> w;
    std::string cur;
    for (char c : essay) {
      if (c == ' ' || c == '\n' || c == '\t') {
        if (!cur.empty()) w.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    if (!cur.empty()) w.push_back(cur);
    return w;
  }();

  if (spec.haystack == "essay" && spec.task == "niah" && essay_words.empty()) throw Error("ruler: the essay haystack is empty");
  std::function<RulerSample(int64_t)> build;
  if (spec.task == "niah") {
    build = [&, seed](int64_t size) {
      std::mt19937_64 rng(seed);
      const int num_k = std::max(spec.num_k, spec.num_q);
      auto key = [&] { return spec.key == "words" ? word_key(rng) : uuid(rng); };
      auto value = [&] { return spec.value == "numbers" ? number7(rng) : uuid(rng); };
      std::vector<std::string> keys, needles;
      std::vector<std::vector<std::string>> values;
      for (int k = 0; k < num_k; ++k) {
        keys.push_back(key());
        values.emplace_back();
        for (int v = 0; v < spec.num_v; ++v) {
          values.back().push_back(value());
          needles.push_back(fill(kNeedle, {{"type_needle_v", spec.value}, {"key", keys.back()}, {"value", values.back().back()}}));
        }
      }
      // The haystack: `size` noise sentences, essay words, or distractor needles.
      std::vector<std::string> units;
      if (spec.haystack == "noise") {
        units.assign(static_cast<size_t>(size), kNoise);
      } else if (spec.haystack == "needle") {
        for (int64_t i = 0; i < size; ++i)
          units.push_back(fill(kNeedle, {{"type_needle_v", spec.value}, {"key", key()}, {"value", value()}}));
      } else {
        std::string text;
        for (int64_t i = 0; i < size; ++i) text += (i ? " " : "") + essay_words[static_cast<size_t>(i) % essay_words.size()];
        units.push_back(text);
      }
      // Needles go at evenly spread random depths between units (for the essay, between words).
      std::string context;
      if (spec.haystack == "essay") {
        std::vector<std::string> words;
        for (int64_t i = 0; i < size; ++i) words.push_back(essay_words[static_cast<size_t>(i) % essay_words.size()]);
        std::vector<size_t> at;
        for (size_t n = 0; n < needles.size(); ++n) at.push_back(rng() % (words.size() + 1));
        std::sort(at.begin(), at.end());
        size_t next = 0;
        for (size_t w = 0; w <= words.size(); ++w) {
          while (next < at.size() && at[next] == w) context += (context.empty() ? "" : " ") + needles[next++];
          if (w < words.size()) context += (context.empty() ? "" : " ") + words[w];
        }
      } else {
        std::vector<std::string> all = units;
        std::vector<size_t> at;
        for (size_t n = 0; n < needles.size(); ++n) at.push_back(rng() % (all.size() + 1));
        std::sort(at.begin(), at.end());
        for (size_t n = needles.size(); n-- > 0;) all.insert(all.begin() + static_cast<std::ptrdiff_t>(at[n]), needles[n]);
        for (const std::string& u : all) context += (context.empty() ? "" : "\n") + u;
      }
      // Which keys are asked: the first num_q (multiquery asks several; the others one).
      std::string query;
      std::vector<std::string> outputs;
      const int asked = spec.num_q;
      for (int q = 0; q < asked; ++q) {
        query += (q == 0 ? "" : q + 1 == asked ? ", and " : ", ") + keys[static_cast<size_t>(q)];
        for (const std::string& v : values[static_cast<size_t>(q)]) outputs.push_back(v);
      }
      const std::string filled = fill(std::string(kNiahTemplate) + kNiahAnswerPrefix, {{"type_needle_v", spec.value}, {"query", query}});
      const Parts p = split_template(filled);
      RulerSample s;
      s.before = p.before;
      s.context = context;
      s.after = p.after;
      s.question = fill("What are all the special magic {type_needle_v} for {query} mentioned in the provided text?",
                        {{"type_needle_v", spec.value}, {"query", query}});
      s.outputs = outputs;
      return s;
    };
  } else if (spec.task == "variable_tracking") {
    build = [&, seed](int64_t size) {
      std::mt19937_64 rng(seed);
      const std::string value = std::to_string(10000 + rng() % 90000);
      std::vector<std::string> vars;
      for (int i = 0; i < 5; ++i) vars.push_back(letters(rng, 5, 'A'));  // one chain of four hops
      std::vector<std::string> statements = {"VAR " + vars[0] + " = " + value};
      for (size_t i = 1; i < vars.size(); ++i) statements.push_back("VAR " + vars[i] + " = VAR " + vars[i - 1]);
      std::vector<std::string> units(static_cast<size_t>(size), kNoise);
      std::vector<size_t> at;
      for (size_t n = 0; n < statements.size(); ++n) at.push_back(rng() % (units.size() + 1));
      std::sort(at.begin(), at.end());  // in order, so the chain reads forwards
      for (size_t n = statements.size(); n-- > 0;)
        units.insert(units.begin() + static_cast<std::ptrdiff_t>(at[n]), statements[n] + ".");
      std::string context;
      for (const std::string& u : units) context += (context.empty() ? "" : "\n") + u;
      const Parts p = split_template(fill(std::string(kVtTemplate) + kVtAnswerPrefix, {{"query", value}, {"num_v", std::to_string(vars.size())}}));
      RulerSample s{0, p.before, context, p.after, "Find all variables that are assigned the value " + value + " in the text above.", vars, 0};
      return s;
    };
  } else if (spec.task == "common_words_extraction") {
    build = [&, seed](int64_t size) {
      std::mt19937_64 rng(seed);
      std::vector<std::string> pool = kNouns;
      pool.insert(pool.end(), kAdjectives.begin(), kAdjectives.end());
      std::shuffle(pool.begin(), pool.end(), rng);
      // 10 common words 30 times each, `size` uncommon words 3 times each (RULER's freq_cw / freq_ucw);
      // beyond the word list, uncommon words are made up.
      while (pool.size() < static_cast<size_t>(size) + 10) pool.push_back(letters(rng, 7, 'a'));
      std::vector<std::string> list;
      for (size_t i = 0; i < 10; ++i) list.insert(list.end(), 30, pool[i]);
      for (size_t i = 10; i < 10 + static_cast<size_t>(size); ++i) list.insert(list.end(), 3, pool[i]);
      std::shuffle(list.begin(), list.end(), rng);
      std::string context;
      for (size_t i = 0; i < list.size(); ++i) context += (i ? " " : "") + std::to_string(i + 1) + ". " + list[i];
      const Parts p = split_template(std::string(kCweTemplate) + kCweAnswerPrefix);
      return RulerSample{0, p.before, context, p.after, "What are the 10 most common words in the above list?",
                         std::vector<std::string>(pool.begin(), pool.begin() + 10), 0};
    };
  } else {
    build = [&, seed](int64_t size) {
      std::mt19937_64 rng(seed);
      // Coded words with Zipf-like frequencies (RULER draws them from a zeta distribution, alpha 2).
      std::vector<std::string> vocab;
      for (int i = 0; i < 64; ++i) vocab.push_back(letters(rng, 6, 'a'));
      std::vector<std::string> words;
      for (int64_t i = 0; i < size * 8; ++i) {
        double u = std::uniform_real_distribution<double>(1e-9, 1.0)(rng);
        size_t rank = static_cast<size_t>(1.0 / std::sqrt(u)) - 1;  // P(rank >= r) ~ 1/r^2
        words.push_back(rank < vocab.size() ? vocab[rank] : "....");
      }
      std::string context;
      std::map<std::string, int> count;
      for (const std::string& w : words) {
        context += (context.empty() ? "" : " ") + w;
        if (w != "....") ++count[w];
      }
      // The answer is what the text holds: the three most frequent coded words (ties: vocabulary order).
      std::vector<std::string> top = vocab;
      std::stable_sort(top.begin(), top.end(), [&](const std::string& a, const std::string& b) { return count[a] > count[b]; });
      const Parts p = split_template(std::string(kFweTemplate) + kFweAnswerPrefix);
      return RulerSample{0, p.before, context, p.after,
                         "What are the three most frequently appeared words in the above coded text?",
                         {top[0], top[1], top[2]}, 0};
    };
  }
  RulerSample s = fit(build, tok, budget);
  s.index = index;
  return s;
}

}  // namespace longqa::eval
