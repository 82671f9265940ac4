#include "data/pretrain.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "data/jsonl_records.h"
#include "data/line_reader.h"
#include "data/megatron_dataset.h"
#include "util/random.h"
#include "engine/tokenizer.h"
#include "util/error.h"
#include "util/parse.h"
#include "util/progress.h"
#include "util/atomic_file.h"
#include "util/sha256.h"

namespace longqa::data {

using json = nlohmann::json;
namespace fs = std::filesystem;

void apply_preset(const std::string& name, PretrainOptions& o) {
  if (name != "chatqa2") throw Error("unknown preset '" + name + "' (known: chatqa2)");
  // ChatQA-2 §3.1: SlimPajama, long documents upsampled per source with Fu et al.'s setting 0.1,
  // documents separated by "<s>", 128K-token sequences, about 10B tokens.
  o.seq_len = 131072;
  o.separator = "<s>";
  o.text_field = "text";
  o.source_field = "meta.redpajama_set_name";
  o.short_keep = 0.1;
  o.short_threshold = 4096;
  o.chars_per_token = 3.68;
  o.tokens = 10'000'000'000ULL;
  // SlimPajama's own token shares per source (Fu et al.'s SLIMPAJAMA_ORIGINAL_MIX).
  o.mix = {{"RedPajamaC4", 0.26609933},        {"RedPajamaCommonCrawl", 0.53374772}, {"RedPajamaStackExchange", 0.03169647},
           {"RedPajamaWikipedia", 0.03402128}, {"RedPajamaGithub", 0.05004782},      {"RedPajamaArXiv", 0.04290379},
           {"RedPajamaBook", 0.0414836}};
}

std::map<std::string, double> parse_mix(const std::string& text) {
  std::map<std::string, double> mix;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    const size_t eq = item.rfind('=');
    const double share = eq != std::string::npos && eq > 0 ? parse_double(item.substr(eq + 1)).value_or(-1) : -1;
    if (!(share > 0) || !std::isfinite(share)) throw Error("--mix: '" + item + "' is not SOURCE=SHARE with a positive share");
    mix[item.substr(0, eq)] = share;
    start = comma + 1;
  }
  return mix;
}

uint64_t parse_count(const std::string& text) {
  static const std::map<char, double> kScale = {{'k', 1e3}, {'m', 1e6}, {'b', 1e9}, {'t', 1e12}};
  std::string digits = text;
  double scale = 1;
  if (!digits.empty()) {
    const auto it = kScale.find(static_cast<char>(std::tolower(static_cast<unsigned char>(digits.back()))));
    if (it != kScale.end()) {
      scale = it->second;
      digits.pop_back();
    }
  }
  if (const auto v = parse_double(digits); v && *v * scale >= 0 && *v * scale < 1.8e19)
    return static_cast<uint64_t>(std::llround(*v * scale));
  throw Error("'" + text + "' is not a count (examples: 131072, 64k, 100m, 10b)");
}

namespace {

// Documents' lengths in power-of-two buckets: [0,128), [128,256), ..., [131072, ∞).
constexpr int kBuckets = 12;
int bucket(double tokens) {
  if (tokens < 128) return 0;
  return std::min(kBuckets - 1, static_cast<int>(std::floor(std::log2(tokens))) - 6);
}

// Counts per source. The field names are the report's and the checkpoint's keys.
struct SourceStats {
  uint64_t documents_read = 0, short_dropped = 0, over_budget = 0, outside_mix = 0, documents_written = 0, cut_at_budget = 0;
  uint64_t characters_read = 0;  // code points: exact, so a resumed run sums exactly as an uninterrupted one
  uint64_t tokens_written = 0, budget = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SourceStats, documents_read, short_dropped, over_budget, outside_mix, documents_written,
                                   cut_at_budget, characters_read, tokens_written, budget)

// Everything a checkpoint records: where the input stands and what has been counted so far.
struct RunState {
  std::string fingerprint;
  size_t file = 0;
  uint64_t line = 0;            // lines of `file` already consumed
  uint64_t records_seen = 0;    // every line of every file so far: the index that seeds each keep-draw
  uint64_t documents_written = 0, tokens = 0, separator_tokens = 0, batches = 0;
  std::map<std::string, double> mix;
  std::map<std::string, SourceStats> sources;
  RecordProblems problems;
  std::vector<uint64_t> before = std::vector<uint64_t>(kBuckets), after = std::vector<uint64_t>(kBuckets);
  double seconds = 0;
  uint64_t bytes_read = 0;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RunState, fingerprint, file, line, records_seen, documents_written, tokens, separator_tokens,
                                   batches, mix, sources, problems, before, after, seconds, bytes_read)

void write_json(const std::string& path, const json& j) { write_file_atomically(path, j.dump(2) + "\n"); }

std::string fingerprint(const Tokenizer& tk, const std::vector<std::string>& files, const PretrainOptions& o) {
  const json j = {{"seq_len", o.seq_len},         {"separator", o.separator},       {"text_field", o.text_field},
                  {"source_field", o.source_field}, {"short_keep", o.short_keep},   {"short_threshold", o.short_threshold},
                  {"chars_per_token", o.chars_per_token}, {"mix", o.mix},           {"tokens", o.tokens},
                  {"seed", o.seed},               {"vocab", tk.vocab_size()},       {"tokenizer", o.tokenizer_name},
                  {"files", files}};
  return sha256_hex(j.dump());
}

// Python's len(str): Unicode code points (Fu et al. estimate tokens from it).
size_t code_points(std::string_view s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

struct Parsed {
  RecordStatus status = RecordStatus::Ok;
  std::string reason, source;
  uint64_t characters = 0;
  double estimated = 0;  // tokens, from characters
  bool is_short = false, keep = false;
  std::vector<int32_t> ids;
};

// The input's token shares per source, estimated from characters: one pass that reads, parses and
// counts without tokenizing.
std::map<std::string, double> measure_mix(const std::vector<std::string>& files, const PretrainOptions& o, int threads) {
  std::map<std::string, double> totals;
  RecordBatcher batcher(files, o.batch_bytes);
  RecordBatch batch;
  std::vector<std::pair<std::string, double>> found;
  while (batcher.next(batch)) {
    found.assign(batch.lines.size(), {});
#pragma omp parallel for schedule(dynamic, 64) num_threads(threads)
    for (size_t i = 0; i < batch.lines.size(); ++i) {
      std::string text, source;
      if (parse_record(batch.lines[i], o.text_field, o.source_field, text, source).status == RecordStatus::Ok)
        found[i] = {source, static_cast<double>(code_points(text)) / o.chars_per_token};
    }
    for (const auto& [source, tokens] : found)
      if (!source.empty()) totals[source] += tokens;
  }
  if (totals.empty()) throw Error("no readable records in the input to measure its source mix from");
  return totals;
}

// Shares are given unnormalised (--mix): their sum normalises them.
double share_sum(const std::map<std::string, double>& mix) {
  return std::accumulate(mix.begin(), mix.end(), 0.0, [](double a, const auto& kv) { return a + kv.second; });
}

// Splits `total` into per-source budgets proportional to the shares, summing exactly to total.
void set_budgets(RunState& s, uint64_t total) {
  const double sum = share_sum(s.mix);
  uint64_t assigned = 0;
  const std::string* largest = nullptr;
  for (const auto& [source, share] : s.mix) {
    const auto b = static_cast<uint64_t>(std::floor(static_cast<double>(total) * share / sum));
    s.sources[source].budget = b;
    assigned += b;
    if (!largest || share > s.mix.at(*largest)) largest = &source;
  }
  if (largest) s.sources[*largest].budget += total - assigned;
}

json make_report(const RunState& s, const PretrainOptions& o, const std::string& prefix, TokenDtype dtype, bool finished) {
  double est_total = 0;
  uint64_t written_total = 0;
  for (const auto& [name, st] : s.sources) {
    est_total += static_cast<double>(st.characters_read);
    written_total += st.tokens_written;
  }
  const double mix_sum = share_sum(s.mix);
  json sources = json::object();
  std::vector<std::string> short_of_budget;
  for (const auto& [name, st] : s.sources) {
    json e = st;
    e["estimated_tokens_read"] = std::llround(static_cast<double>(st.characters_read) / o.chars_per_token);
    e["share_before"] = est_total > 0 ? static_cast<double>(st.characters_read) / est_total : 0.0;
    e["share_after"] = written_total > 0 ? static_cast<double>(st.tokens_written) / static_cast<double>(written_total) : 0.0;
    if (s.mix.contains(name)) e["share_target"] = s.mix.at(name) / mix_sum;
    if (st.budget > 0 && st.tokens_written + 64 < st.budget) short_of_budget.push_back(name);
    sources[name] = e;
  }
  json histogram = json::array();
  for (int b = 0; b < kBuckets; ++b) {
    json row = {{"min_tokens", b == 0 ? 0 : 64 << b}, {"documents_before", s.before[b]}, {"documents_after", s.after[b]}};
    if (b + 1 < kBuckets) row["max_tokens"] = (128 << b) - 1;
    histogram.push_back(row);
  }
  const uint64_t sequences = (s.tokens + o.seq_len - 1) / o.seq_len;
  json report = {
      {"finished", finished},
      {"prefix", prefix},
      {"dtype", dtype_name(dtype)},
      {"seq_len", o.seq_len},
      {"sequences", sequences},
      {"last_sequence_tokens", sequences ? s.tokens - (sequences - 1) * o.seq_len : 0},
      {"tokens", s.tokens},
      {"separator", o.separator},
      {"separator_tokens", s.separator_tokens},
      {"documents_written", s.documents_written},
      {"records_read", s.records_seen},
      {"upsampling",
       {{"short_keep", o.short_keep}, {"short_threshold", o.short_threshold}, {"chars_per_token", o.chars_per_token},
        {"budget_tokens", o.tokens}, {"mix_given", !o.mix.empty()}, {"seed", o.seed}}},
      {"sources", sources},
      {"sources_short_of_budget", short_of_budget},
      {"length_histogram", histogram},
      {"bad_records", s.problems},
      {"seconds", s.seconds},
      {"input_mb_per_s", s.seconds > 0 ? static_cast<double>(s.bytes_read) / 1e6 / s.seconds : 0.0},
      {"tokens_per_s", s.seconds > 0 ? static_cast<double>(s.tokens) / s.seconds : 0.0},
  };
  return report;
}

}  // namespace

json run_pretrain(const Tokenizer& tokenizer, const std::vector<std::string>& files, const std::string& prefix,
                  const PretrainOptions& o) {
  if (files.empty()) throw Error("no input files");
  if (o.seq_len == 0 || o.seq_len > 0x7fffffffULL) throw Error("--seq-len must be between 1 and 2^31-1");
  if (!(o.short_keep >= 0 && o.short_keep <= 1)) throw Error("--short-keep must be within [0, 1]");
  if (!(o.chars_per_token > 0)) throw Error("--chars-per-token must be positive");
  for (const std::string& f : files)
    if (!fs::is_regular_file(f)) throw Error(f + ": no such file");
  const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  const TokenDtype dtype = optimal_dtype(tokenizer.vocab_size());
  const std::string state_path = prefix + ".state.json", report_path = prefix + ".report.json";
  const auto start = std::chrono::steady_clock::now();

  RunState s;
  const std::string print = fingerprint(tokenizer, files, o);
  if (o.resume) {
    std::ifstream f(state_path);
    if (!f) throw Error(state_path + ": no unfinished run to resume");
    try {
      s = json::parse(f).get<RunState>();
    } catch (const json::exception& e) {
      throw Error(state_path + ": unreadable checkpoint: " + e.what());
    }
    if (s.fingerprint != print) throw Error(state_path + ": the run it records had other inputs or options; not resuming");
  } else {
    if (fs::exists(state_path)) throw Error(state_path + ": an unfinished run is there; resume it (--resume) or delete " + prefix + ".*");
    if (fs::exists(prefix + ".idx") || fs::exists(prefix + ".bin")) throw Error(prefix + ".bin/.idx exist; choose another --out");
    s.fingerprint = print;
    if (o.tokens > 0) {
      s.mix = o.mix.empty() ? measure_mix(files, o, threads) : o.mix;
      set_budgets(s, o.tokens);
    }
  }
  const bool budgeted = o.tokens > 0;
  const double earlier_seconds = s.seconds;  // of the runs this one resumes
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  const std::vector<int32_t> separator = tokenizer.encode(o.separator, /*parse_special=*/false);
  IndexedDatasetWriter writer(prefix, dtype, s.tokens);
  // From here on a failed run (a crash, a bad record under --strict) can always be resumed.
  if (!o.resume) write_json(state_path, s);
  auto is_full = [&](const SourceStats& st) {
    return budgeted && st.tokens_written + (s.documents_written ? separator.size() : 0) >= st.budget;
  };
  auto all_full = [&] {
    return budgeted && std::all_of(s.mix.begin(), s.mix.end(), [&](const auto& kv) { return is_full(s.sources.at(kv.first)); });
  };

  std::vector<EncodeCache> caches(static_cast<size_t>(threads));
  std::vector<Parsed> parsed;
  RecordBatcher batcher(files, o.batch_bytes, s.file, s.line);
  RecordBatch batch;
  // Against the token budget when there is one; else the input bytes read (compressed input has no
  // known total).
  Progress progress(budgeted ? "packing tokens" : "packing input", budgeted ? o.tokens : 0, /*bytes=*/!budgeted);
  uint64_t batches_now = 0;
  bool finished = true;
  while (!all_full() && batcher.next(batch)) {
    std::map<std::string, bool> closed;  // sources whose budget is spent: their records are not tokenized
    for (const auto& [name, st] : s.sources) closed[name] = is_full(st) || (budgeted && !s.mix.contains(name));
    parsed.assign(batch.lines.size(), {});
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
    for (size_t i = 0; i < batch.lines.size(); ++i) {
      Parsed& p = parsed[i];
      std::string text;
      const RecordResult r = parse_record(batch.lines[i], o.text_field, o.source_field, text, p.source);
      p.status = r.status;
      p.reason = r.reason;
      if (p.status != RecordStatus::Ok) continue;
      p.characters = code_points(text);
      p.estimated = static_cast<double>(p.characters) / o.chars_per_token;
      p.is_short = p.estimated < o.short_threshold;
      p.keep = !p.is_short || Rng(o.seed, s.records_seen + i).uniform() < o.short_keep;
      const auto c = closed.find(p.source);
      if (p.keep && (c == closed.end() ? !budgeted : !c->second))
        p.ids = tokenizer.encode(text, /*parse_special=*/false, &caches[static_cast<size_t>(omp_get_thread_num())]);
    }
    for (size_t i = 0; i < parsed.size(); ++i) {
      Parsed& p = parsed[i];
      if (p.status == RecordStatus::Bad) {
        if (o.strict) throw Error(batch.where(i) + ": " + p.reason);
        s.problems.add(batch.where(i), p.reason);
        continue;
      }
      if (p.status == RecordStatus::Empty) {
        s.problems.empty_records++;
        continue;
      }
      SourceStats& st = s.sources[p.source];
      ++st.documents_read;
      st.characters_read += p.characters;
      ++s.before[static_cast<size_t>(bucket(p.estimated))];
      if (!p.keep) {
        ++st.short_dropped;
        continue;
      }
      if (budgeted && !s.mix.contains(p.source)) {
        ++st.outside_mix;
        continue;
      }
      if (is_full(st)) {
        ++st.over_budget;
        continue;
      }
      const size_t sep = s.documents_written ? separator.size() : 0;
      size_t take = p.ids.size();
      if (budgeted && sep + take > st.budget - st.tokens_written) {
        take = st.budget - st.tokens_written - sep;
        ++st.cut_at_budget;
      }
      writer.append(std::span(separator).first(sep));
      writer.append(std::span(p.ids).first(take));
      s.separator_tokens += sep;
      st.tokens_written += sep + take;
      ++st.documents_written;
      ++s.documents_written;
      ++s.after[static_cast<size_t>(bucket(static_cast<double>(take)))];
      p.ids = {};
    }
    s.tokens = writer.tokens();
    s.records_seen += batch.lines.size();
    s.bytes_read += batch.bytes;
    std::tie(s.file, s.line) = batcher.position();
    ++s.batches;
    s.seconds = earlier_seconds + elapsed();
    writer.sync();
    write_json(state_path, s);
    progress.update(budgeted ? s.tokens : s.bytes_read, batch.where(batch.lines.size() - 1));
    if (o.stop_after_batches && ++batches_now >= o.stop_after_batches && !all_full()) {
      finished = false;
      break;
    }
  }
  s.seconds = earlier_seconds + elapsed();
  if (s.records_seen == 0 && s.problems.count() == 0) throw Error("the input holds no records");
  if (finished) {
    if (s.tokens == 0) throw Error("no document was written (" + std::to_string(s.problems.count()) + " bad records)");
    writer.finish(o.seq_len);
  }
  json report = make_report(s, o, prefix, dtype, finished);
  report["tokenizer"] = o.tokenizer_name;
  if (finished) {
    write_json(report_path, report);
    fs::remove(state_path);
  }
  return report;
}

}  // namespace longqa::data
