#include "data/long_sft.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "data/chat_record.h"
#include "data/jsonl_records.h"
#include "util/random.h"
#include "engine/tokenizer.h"
#include "qa/chat_template.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/parse.h"

namespace longqa::data {

using json = nlohmann::json;
namespace fs = std::filesystem;

SftFormat parse_sft_format(const std::string& name) {
  if (name == "messages") return SftFormat::Messages;
  if (name == "nemo") return SftFormat::Nemo;
  throw Error("--format: '" + name + "' is not messages or nemo");
}

std::pair<std::string, double> parse_blend(const std::string& text) {
  const size_t colon = text.rfind(':');
  const double ratio = colon != std::string::npos && colon > 0 ? parse_double(text.substr(colon + 1)).value_or(-1) : -1;
  if (!(ratio > 0 && ratio < 1)) throw Error("--blend: '" + text + "' is not FILE:RATIO with 0 < RATIO < 1");
  return {text.substr(0, colon), ratio};
}

namespace {

struct Story {
  std::string id, where, text, summary;
  std::vector<std::pair<std::string, std::string>> qa;  // question, answer
};

// The story proper: Gutenberg texts carry a licence before `start` and after `end`.
std::string cut_story(const std::string& text, const std::string& start, const std::string& end) {
  size_t a = start.empty() ? std::string::npos : text.find(start);
  if (a == std::string::npos) a = 0;
  size_t b = end.empty() ? std::string::npos : text.rfind(end);
  b = (b == std::string::npos || b < a) ? text.size() : b + end.size();
  return text.substr(a, b - a);
}

// Reads NarrativeQA rows and hands out whole stories (consecutive rows of one document id).
class StoryReader {
 public:
  StoryReader(const std::vector<std::string>& files, bool strict, RecordProblems& problems)
      : batcher_(files, size_t{8} << 20), strict_(strict), problems_(problems) {}

  bool next(Story& out) {
    for (;;) {
      if (i_ >= batch_.lines.size()) {
        if (!batcher_.next(batch_)) {
          if (current_.id.empty()) return false;
          out = std::move(current_);
          current_ = {};
          return true;
        }
        i_ = 0;
      }
      const size_t i = i_++;
      json row;
      RecordResult r = parse_object(batch_.lines[i], row);
      if (r.status == RecordStatus::Empty) continue;
      const std::string *id = nullptr, *question = nullptr, *answer = nullptr;
      if (r.status == RecordStatus::Ok) {
        id = string_at(row, "document.id");
        question = string_at(row, "question.text");
        const json* answers = lookup(row, "answers");
        if (answers && answers->is_array() && !answers->empty()) answer = string_at((*answers)[0], "text");
        if (!id || !question || !answer) r = {RecordStatus::Bad, "not a NarrativeQA row (document.id, question.text, answers[0].text)"};
      }
      if (r.status == RecordStatus::Ok && *id != current_.id) {
        const std::string *text = string_at(row, "document.text"), *summary = string_at(row, "document.summary.text");
        if (!text || !summary || summary->empty()) {
          r = {RecordStatus::Bad, "the story's first row lacks document.text or document.summary.text"};
        } else {
          Story next_story{*id, batch_.where(i), "", *summary, {}};
          const std::string* start = string_at(row, "document.start");
          const std::string* end = string_at(row, "document.end");
          next_story.text = cut_story(*text, start ? *start : "", end ? *end : "");
          std::swap(next_story, current_);
          if (!next_story.id.empty()) {
            current_.qa.emplace_back(*question, *answer);
            out = std::move(next_story);
            return true;
          }
        }
      }
      if (r.status == RecordStatus::Bad) {
        if (strict_) throw Error(batch_.where(i) + ": " + r.reason);
        problems_.add(batch_.where(i), r.reason);
        continue;
      }
      current_.qa.emplace_back(*question, *answer);
    }
  }

 private:
  RecordBatcher batcher_;
  RecordBatch batch_;
  size_t i_ = 0;
  Story current_;
  bool strict_;
  RecordProblems& problems_;
};

// A story cut into paragraphs (blank-line separated; an over-long paragraph is cut at its lines) with
// their token counts, so that a window of the wanted length can be chosen without re-tokenizing.
struct Paragraphs {
  std::vector<std::string_view> text;
  std::vector<uint32_t> tokens;
  uint64_t total = 0;
};

// max_bytes: a paragraph longer than this is cut at the first line break after every max_bytes / 2.
Paragraphs split_paragraphs(const std::string& story, const Tokenizer& tk, EncodeCache& cache, uint64_t max_bytes) {
  Paragraphs p;
  auto add = [&](std::string_view piece) {
    const size_t a = piece.find_first_not_of(" \t\r\n");
    if (a == std::string_view::npos) return;
    piece = piece.substr(a, piece.find_last_not_of(" \t\r\n") - a + 1);
    p.text.push_back(piece);
    p.tokens.push_back(static_cast<uint32_t>(tk.encode(piece, false, &cache).size()));
    p.total += p.tokens.back() + 1;  // + the "\n\n" that joins it
  };
  const std::string_view s(story);
  for (size_t pos = 0; pos < s.size();) {
    size_t blank = s.find("\n\n", pos);
    if (blank == std::string_view::npos) blank = s.size();
    const std::string_view para = s.substr(pos, blank - pos);
    // A paragraph far longer than a window would make the window's length unreachable: cut it at lines.
    if (para.size() > max_bytes) {
      for (size_t l = 0; l < para.size();) {
        size_t e = para.find('\n', l + std::min<size_t>(para.size() - l, max_bytes / 2));
        if (e == std::string_view::npos) e = para.size();
        add(para.substr(l, e - l));
        l = e + 1;
      }
    } else {
      add(para);
    }
    pos = blank + 2;
  }
  return p;
}

struct Sample {
  std::string line;  // the output JSON line; empty when no sample could be made
  uint64_t tokens = 0;
};

struct Prompt {
  std::string text, answer;
};

Prompt long_prompt(const std::string& context, const std::string& question, const std::string& answer,
                   const std::string& instruction) {
  const qa::RenderedPrompt p =
      qa::render_prompt(qa::Template::ChatQA, "", qa::kChatQaSystem, context, {{"user", question}}, instruction);
  return {p.prefix + p.suffix, answer};
}

std::string format_long(const Prompt& p, const std::string& context, const std::string& question,
                        const std::string& instruction, SftFormat f, const std::string& id, uint64_t tokens) {
  json j;
  if (f == SftFormat::Nemo) {
    j = {{"input", p.text}, {"output", p.answer}};
  } else {
    j["messages"] = {{{"role", "system"}, {"content", std::string(qa::kChatQaSystem) + "\n\n" + context}},
                     {{"role", "user"}, {"content", instruction + " " + question}},
                     {{"role", "assistant"}, {"content", p.answer}}};
  }
  j["source"] = "narrativeqa";
  j["id"] = id;
  j["tokens"] = tokens;
  return j.dump();
}

// One long sample: a window of the story [a, b) with the summary inserted before paragraph a + k,
// grown or shrunk until the whole sample has min..max tokens.
Sample make_long_sample(const Story& st, const Paragraphs& p, size_t q, uint64_t summary_tokens, const Tokenizer& tk,
                        EncodeCache& cache, const LongSftOptions& o, const std::string& instruction, std::string& reason) {
  const auto& [question, answer] = st.qa[q];
  Rng rng(o.seed, hash_name(st.id) + q);
  const uint64_t target = o.min_tokens + rng.below(o.max_tokens - o.min_tokens + 1);
  const uint64_t base = tk.encode(long_prompt("", question, answer, instruction).text, false, &cache).size() +
                        tk.encode(" " + answer, false, &cache).size() + summary_tokens + 1;
  const size_t n = p.text.size();
  const size_t start = rng.below(n);
  size_t a = start, b = start;
  uint64_t est = base;
  while (b < n && est + p.tokens[b] + 1 <= target) est += p.tokens[b++] + 1;
  while (a > 0 && est + p.tokens[a - 1] + 1 <= target) est += p.tokens[--a] + 1;
  const size_t k = rng.below(b - a + 1);
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::string context;
    for (size_t i = a; i <= b; ++i) {
      if (i == a + std::min(k, b - a)) context += (context.empty() ? "" : "\n\n") + st.summary;
      if (i < b) context += (context.empty() ? "" : "\n\n") + std::string(p.text[i]);
    }
    const Prompt prompt = long_prompt(context, question, answer, instruction);
    const uint64_t total = tk.encode(prompt.text, false, &cache).size() + tk.encode(" " + answer, false, &cache).size();
    if (total >= o.min_tokens && total <= o.max_tokens)
      return {format_long(prompt, context, question, instruction, o.format, st.id, total), total};
    if (total > o.max_tokens) {
      if (b - a <= 1) break;
      for (uint64_t dropped = 0; dropped < total - o.max_tokens && b - a > 1;) dropped += p.tokens[--b] + 1;
    } else {
      if (a == 0 && b == n) {
        reason = "story too short";
        return {};
      }
      for (uint64_t added = 0; added < o.min_tokens - total && (b < n || a > 0);)
        added += (b < n ? p.tokens[b++] : p.tokens[--a]) + 1;
    }
  }
  reason = "no window of the story fits " + std::to_string(o.min_tokens) + ".." + std::to_string(o.max_tokens) + " tokens";
  return {};
}

// A short-SFT record in the output format; empty with a reason if the record is not usable.
std::string convert_short(const json& rec, SftFormat f, const std::string& source, std::string& reason) {
  ChatRecord r;
  reason = parse_chat_record(rec, r);
  if (!reason.empty()) return {};
  json j;
  if (r.prompt_given && f == SftFormat::Nemo) {
    j = {{"input", r.input}, {"output", r.output}};
  } else if (r.prompt_given) {
    j["messages"] = {{{"role", "system"}, {"content", qa::kChatQaSystem}},
                     {{"role", "user"}, {"content", r.input}},
                     {{"role", "assistant"}, {"content", r.output}}};
  } else {
    if (r.system.empty()) r.system = qa::kChatQaSystem;
    if (f == SftFormat::Nemo) {
      const auto [prompt, answer] = chatqa_prompt(r);
      j = {{"input", prompt}, {"output", answer}};
    } else {
      j["messages"] = json::array({{{"role", "system"}, {"content", r.context.empty() ? r.system : r.system + "\n\n" + r.context}}});
      for (const qa::Turn& t : r.turns) j["messages"].push_back({{"role", t.role}, {"content", t.content}});
    }
  }
  j["source"] = source;
  return j.dump();
}

struct BlendPart {
  std::string file;
  double ratio;
  std::vector<std::string> lines;  // the chosen samples, converted, in output order
  uint64_t valid = 0, wanted = 0;
};

// Chooses `wanted` of the file's usable records (a seeded permutation, repeated if the file has fewer)
// and converts them.
void load_blend(BlendPart& part, size_t index, const LongSftOptions& o, RecordProblems& problems) {
  std::vector<std::string> converted;
  RecordBatcher batcher({part.file}, size_t{8} << 20);
  RecordBatch batch;
  while (batcher.next(batch)) {
    for (size_t i = 0; i < batch.lines.size(); ++i) {
      json rec;
      RecordResult r = parse_object(batch.lines[i], rec);
      if (r.status == RecordStatus::Empty) continue;
      std::string line;
      if (r.status == RecordStatus::Ok) line = convert_short(rec, o.format, fs::path(part.file).filename().string(), r.reason);
      if (line.empty()) {
        if (o.strict) throw Error(batch.where(i) + ": " + r.reason);
        problems.add(batch.where(i), r.reason);
        continue;
      }
      converted.push_back(std::move(line));
    }
  }
  part.valid = converted.size();
  if (converted.empty()) throw Error(part.file + ": no usable SFT record");
  Rng rng(o.seed, 0x626c656e64ULL + index);
  std::vector<size_t> order;
  while (part.lines.size() < part.wanted) {
    order.resize(converted.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    rng.shuffle(order);
    for (size_t i = 0; i < order.size() && part.lines.size() < part.wanted; ++i) part.lines.push_back(converted[order[i]]);
  }
}

}  // namespace

json run_long_sft(const Tokenizer& tk, const std::vector<std::string>& narrativeqa, const std::string& out,
                  const LongSftOptions& o) {
  if (narrativeqa.empty()) throw Error("no NarrativeQA files");
  if (o.min_tokens == 0 || o.min_tokens > o.max_tokens) throw Error("--min-tokens must be positive and at most --max-tokens");
  double blend_sum = 0;
  for (const auto& [file, ratio] : o.blend) {
    if (!fs::is_regular_file(file)) throw Error(file + ": no such file");
    blend_sum += ratio;
  }
  if (blend_sum >= 1) throw Error("the --blend ratios sum to " + std::to_string(blend_sum) + ": they must leave a share for the long samples");
  for (const std::string& f : narrativeqa)
    if (!fs::is_regular_file(f)) throw Error(f + ": no such file");
  const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  const std::string instruction = o.instruction.empty() ? qa::kChatQaInstruction : o.instruction;

  // 1. Long samples, a few stories at a time on all threads, into a temporary file in story order.
  RecordProblems problems;
  const std::string long_path = out + ".long.tmp";
  std::ofstream long_file(long_path, std::ios::trunc);
  if (!long_file) throw Error(long_path + ": cannot write");
  StoryReader reader(narrativeqa, o.strict, problems);
  uint64_t stories = 0, stories_used = 0, questions = 0, samples = 0, min_len = UINT64_MAX, max_len = 0;
  double sum_len = 0;
  std::map<std::string, uint64_t> skipped;
  std::vector<EncodeCache> caches(static_cast<size_t>(threads));
  const size_t per_batch = static_cast<size_t>(threads) * 2;
  for (bool more = true; more;) {
    std::vector<Story> batch;
    Story st;
    while (batch.size() < per_batch && (more = reader.next(st))) {
      if (o.max_questions && st.qa.size() > o.max_questions) st.qa.resize(o.max_questions);
      batch.push_back(std::move(st));
    }
    std::vector<Paragraphs> paragraphs(batch.size());
    std::vector<uint64_t> summary_tokens(batch.size());
    std::vector<std::pair<size_t, size_t>> items;  // (story, question)
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t s = 0; s < batch.size(); ++s) {
      EncodeCache& cache = caches[static_cast<size_t>(omp_get_thread_num())];
      // About an eighth of the smallest window (at ~4 bytes a token).
      paragraphs[s] = split_paragraphs(batch[s].text, tk, cache, o.min_tokens / 2);
      summary_tokens[s] = tk.encode(batch[s].summary, false, &cache).size();
    }
    for (size_t s = 0; s < batch.size(); ++s) {
      ++stories;
      questions += batch[s].qa.size();
      if (paragraphs[s].text.empty()) {
        skipped["story without text"] += batch[s].qa.size();
        continue;
      }
      for (size_t q = 0; q < batch[s].qa.size(); ++q) items.emplace_back(s, q);
    }
    std::vector<Sample> made(items.size());
    std::vector<std::string> reasons(items.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t i = 0; i < items.size(); ++i) {
      const auto [s, q] = items[i];
      made[i] = make_long_sample(batch[s], paragraphs[s], q, summary_tokens[s], tk, caches[static_cast<size_t>(omp_get_thread_num())],
                                 o, instruction, reasons[i]);
    }
    std::vector<char> used(batch.size(), 0);
    for (size_t i = 0; i < items.size(); ++i) {
      if (made[i].line.empty()) {
        ++skipped[reasons[i]];
        continue;
      }
      long_file << made[i].line << '\n';
      used[items[i].first] = 1;
      ++samples;
      min_len = std::min(min_len, made[i].tokens);
      max_len = std::max(max_len, made[i].tokens);
      sum_len += static_cast<double>(made[i].tokens);
    }
    stories_used += static_cast<uint64_t>(std::count(used.begin(), used.end(), 1));
  }
  long_file.close();
  if (!long_file) throw Error(long_path + ": write failed");
  if (samples == 0) {
    fs::remove(long_path);
    throw Error("no long sample could be made from " + std::to_string(stories) + " stories (" + std::to_string(problems.count()) +
                " bad rows); are they shorter than --min-tokens?");
  }

  // 2. The blend: each short set's share of the whole output, the long samples taking the rest.
  const double total = static_cast<double>(samples) / (1 - blend_sum);
  std::vector<BlendPart> parts;
  for (size_t i = 0; i < o.blend.size(); ++i) {
    BlendPart part{o.blend[i].first, o.blend[i].second, {}, 0, static_cast<uint64_t>(std::llround(total * o.blend[i].second))};
    load_blend(part, i, o, problems);
    parts.push_back(std::move(part));
  }

  // 3. Interleave: a seeded shuffle of which part each output line comes from.
  std::vector<uint32_t> schedule(samples, 0);
  for (size_t i = 0; i < parts.size(); ++i) schedule.insert(schedule.end(), parts[i].lines.size(), static_cast<uint32_t>(i + 1));
  Rng(o.seed, 0x7363686564ULL).shuffle(schedule);
  const std::string tmp = out + ".tmp";
  {
    std::ofstream dst(tmp, std::ios::trunc);
    LineReader longs(long_path);
    std::vector<size_t> next(parts.size(), 0);
    std::string line;
    for (const uint32_t from : schedule) {
      if (from == 0) {
        if (!longs.next(line)) throw Error(long_path + ": ended early");
        dst << line << '\n';
      } else {
        dst << parts[from - 1].lines[next[from - 1]++] << '\n';
      }
    }
    dst.close();
    if (!dst) throw Error(tmp + ": write failed");
  }
  fs::rename(tmp, out);
  fs::remove(long_path);

  json blend = json::array();
  const auto n_out = static_cast<double>(schedule.size());
  for (const BlendPart& p : parts)
    blend.push_back({{"file", p.file},
                     {"ratio", p.ratio},
                     {"records_usable", p.valid},
                     {"samples", p.lines.size()},
                     {"share", static_cast<double>(p.lines.size()) / n_out},
                     {"passes", static_cast<double>(p.lines.size()) / static_cast<double>(p.valid)}});
  json report = {{"out", out},
                 {"format", o.format == SftFormat::Nemo ? "nemo" : "messages"},
                 {"samples", schedule.size()},
                 {"long",
                  {{"stories", stories},
                   {"stories_used", stories_used},
                   {"questions", questions},
                   {"samples", samples},
                   {"share", static_cast<double>(samples) / n_out},
                   {"min_tokens", min_len},
                   {"max_tokens", max_len},
                   {"mean_tokens", sum_len / static_cast<double>(samples)},
                   {"requested_tokens", {o.min_tokens, o.max_tokens}},
                   {"skipped", skipped}}},
                 {"blend", blend},
                 {"bad_records", problems},
                 {"seed", o.seed}};
  write_file_atomically(out + ".report.json", report.dump(2) + "\n");
  return report;
}

}  // namespace longqa::data
