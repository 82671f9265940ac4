#include "qa/conversation.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include "retrieval/chunker.h"
#include "retrieval/loaders.h"
#include "util/error.h"
#include "util/sha256.h"

namespace longqa::qa {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Prefixes shorter than this are cheaper to prefill than to read back from disk.
constexpr size_t kMinDiskPrefix = 256;

// What identifies the model's weights for a KV prefix file: path, sizes and modification times.
std::string model_fingerprint(const Model& model, kernels::WType kv_type) {
  std::string id = fs::absolute(model.path()).string() + "|kv " + kernels::wtype_info(kv_type).name;
  std::vector<fs::path> files;
  if (fs::is_directory(model.path())) {
    for (const auto& e : fs::directory_iterator(model.path()))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(model.path());
  }
  for (const fs::path& f : files)
    id += "|" + f.filename().string() + ":" + std::to_string(fs::file_size(f)) + ":" +
          std::to_string(fs::last_write_time(f).time_since_epoch().count());
  return id;
}

std::vector<int32_t> tokenize(const Tokenizer& tok, const std::string& text) { return tok.encode(text, /*parse_special=*/true); }

}  // namespace

Conversation::Conversation(const Model& model, AskOptions options, std::vector<Turn> history, PromptCache* cache)
    : model_(model),
      o_(std::move(options)),
      template_(o_.chat_template.value_or(detect_template(model))),
      budget_(std::min({o_.long_budget, model.config().context_length,
                        o_.max_context > 0 ? o_.max_context : model.config().context_length})),
      turns_(std::move(history)),
      cache_(cache ? *cache : own_cache_),
      fingerprint_(model_fingerprint(model, o_.kv_type)) {
  if (!o_.docs.empty() && o_.index) throw Error("give documents or an index, not both");
  if (o_.long_budget < 1) throw Error("--long-budget must be positive");
  if (o_.k < 1) throw Error("--k must be at least 1");
  for (const std::string& path : o_.docs) {
    // A file that cannot be read is an error here: the user asked about it by name.
    retrieval::LoadedFile f = retrieval::load_file(fs::absolute(path).lexically_normal().string(), {});
    for (retrieval::Document& d : f.documents) docs_.push_back(std::move(d));
  }
  for (const retrieval::Document& d : o_.texts) docs_.push_back(d);
  if (o_.index && !docs_.empty()) throw Error("give documents or an index, not both");
  if (o_.index) index_ = std::make_unique<retrieval::Index>(*o_.index, retrieval::Index::Mode::Read);
  if (o_.kv_cache_dir) fs::create_directories(*o_.kv_cache_dir);
}

Conversation::~Conversation() {
  index_.reset();
  if (!temp_index_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(temp_index_dir_, ec);
  }
}

Conversation::Context Conversation::whole_text() {
  Context c;
  if (index_) {
    for (const retrieval::StoredDocument& d : index_->documents()) {
      c.text += (c.text.empty() ? "" : "\n\n") + d.text;
      c.citations.push_back({d.name, 0, -1});
    }
    return c;
  }
  for (const retrieval::Document& d : docs_) {
    c.text += (c.text.empty() ? "" : "\n\n") + d.text;
    c.citations.push_back({d.name, 0, -1});
  }
  return c;
}

std::string Conversation::retrieval_query(const std::string& question) const {
  // ChatQA's conversational query: the recent turns joined as "user: ...\nagent: ...\nuser: ...".
  constexpr size_t kRecentTurns = 4;
  std::string q;
  const size_t first = turns_.size() > kRecentTurns ? turns_.size() - kRecentTurns : 0;
  for (size_t i = first; i < turns_.size(); ++i)
    q += (turns_[i].role == "user" ? "user: " : "agent: ") + turns_[i].content + "\n";
  return q + "user: " + question;
}

std::vector<retrieval::SearchResult> Conversation::retrieve(const std::string& question, double& seconds) {
  const auto start = Clock::now();
  if (!index_) {
    // The --doc files, chunked with the model's own tokenizer into a throwaway index.
    std::random_device rd;
    temp_index_dir_ = (fs::temp_directory_path() / ("longqa-ask-" + std::to_string(rd()) + std::to_string(rd()))).string();
    retrieval::AddOptions add;
    add.tokenizer = model_.path();
    add.embed_model = o_.embed_model;
    add.chunk.chunk_tokens = doc_chunk_tokens();
    add.threads = o_.threads;
    std::vector<std::string> paths;
    for (const std::string& p : o_.docs) paths.push_back(p);
    // Documents given as text are indexed from files in the throwaway directory.
    for (size_t i = 0; i < o_.texts.size(); ++i) {
      const fs::path file = fs::path(temp_index_dir_) / "texts" / ("text-" + std::to_string(i) + ".txt");
      fs::create_directories(file.parent_path());
      std::ofstream(file, std::ios::binary) << o_.texts[i].text;
      paths.push_back(file.string());
    }
    {
      retrieval::Index writer(temp_index_dir_, retrieval::Index::Mode::Write);
      const retrieval::AddReport r = writer.add(paths, add);
      if (!r.problems.empty()) throw Error(r.problems.front());
    }
    index_ = std::make_unique<retrieval::Index>(temp_index_dir_, retrieval::Index::Mode::Read);
  }
  retrieval::SearchOptions s;
  s.k = o_.k;
  s.retriever = o_.retriever;
  s.threads = o_.threads;
  std::vector<retrieval::SearchResult> found = index_->search(retrieval_query(question), s);
  seconds = seconds_since(start);
  return found;
}

Conversation::Context Conversation::joined(const std::vector<retrieval::SearchResult>& chunks, size_t n, ChunkOrder order) {
  Context c;
  for (size_t j = 0; j < n; ++j) {
    const retrieval::StoredChunk& chunk = chunks[order == ChunkOrder::BestFirst ? j : n - 1 - j].chunk;
    c.text += (c.text.empty() ? "" : "\n\n") + chunk.text;  // ChatQA: retrieved chunks joined by blank lines
    c.citations.push_back({chunks[j].chunk.doc, chunks[j].chunk.page, chunks[j].chunk.id});
  }
  return c;
}

Session& Conversation::session_for(int64_t positions) {
  const int64_t limit = context_limit();
  if (positions > limit)
    throw Error("the prompt and answer need " + std::to_string(positions) + " positions; the context is " + std::to_string(limit));
  if (!cache_.session || cache_.session->capacity() < positions) {
    // Room for the long-context budget, so that a conversation about the same text keeps its cache.
    const int64_t capacity = std::min(limit, std::max(positions, budget_));
    cache_.session.reset();
    cache_.tokens.clear();
    cache_.session = std::make_unique<Session>(model_, SessionOptions{.context = capacity, .threads = o_.threads, .kv_type = o_.kv_type});
  }
  return *cache_.session;
}

std::string Conversation::prefix_file(const std::vector<int32_t>& prefix) const {
  Sha256 h;
  h.update(fingerprint_);
  h.update(std::string_view(reinterpret_cast<const char*>(prefix.data()), prefix.size() * sizeof(int32_t)));
  return (fs::path(*o_.kv_cache_dir) / (h.hex() + ".kv")).string();
}

Conversation::Prompt Conversation::build_prompt(const std::string& context, const std::vector<Turn>& turns) const {
  const Tokenizer& tok = model_.tokenizer();
  const std::string bos = model_.config().bos_id >= 0 ? tok.token_text(model_.config().bos_id) : "";
  const RenderedPrompt p = render_prompt(template_, bos, o_.system, context, turns, o_.instruction);
  // Prefix and suffix are tokenized apart, so the prefix's tokens (and its cache) do not depend on the question.
  Prompt out;
  out.ids = tokenize(tok, p.prefix);
  out.prefix_tokens = out.ids.size();
  const std::vector<int32_t> suffix = tokenize(tok, p.suffix);
  out.ids.insert(out.ids.end(), suffix.begin(), suffix.end());
  return out;
}

bool Conversation::fits_with_answer(const Prompt& prompt) const {
  return static_cast<int64_t>(prompt.ids.size()) + o_.generation.max_tokens <= context_limit();
}

Conversation::Prompt Conversation::checked(Prompt prompt) const {
  if (!fits_with_answer(prompt))
    throw Error("the prompt of " + std::to_string(prompt.ids.size()) + " tokens and " + std::to_string(o_.generation.max_tokens) +
                " answer tokens exceed the context of " + std::to_string(context_limit()));
  return prompt;
}

int64_t Conversation::context_limit() const {
  const int64_t model = model_.config().context_length;
  return o_.max_context > 0 ? std::min(o_.max_context, model) : model;
}

int64_t Conversation::doc_chunk_tokens() const {
  return o_.chunk_tokens > 0 ? o_.chunk_tokens : rag_chunk_tokens(context_limit());
}

AskResult Conversation::answer(const Prompt& prompt, const std::function<bool(std::string_view)>& on_text) {
  const std::vector<int32_t>& ids = prompt.ids;
  const std::vector<int32_t> prefix(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(prompt.prefix_tokens));
  AskResult r;
  r.prompt_tokens = static_cast<int64_t>(ids.size());
  Session& s = session_for(r.prompt_tokens + o_.generation.max_tokens);
  size_t reused = 0;  // what the in-process cache already holds
  while (reused < cache_.tokens.size() && reused < ids.size() && cache_.tokens[reused] == ids[reused]) ++reused;
  double extra_prefill = 0;
  if (o_.kv_cache_dir && prefix.size() >= kMinDiskPrefix && reused < prefix.size()) {
    const std::string file = prefix_file(prefix);
    bool loaded = false;
    if (fs::exists(file)) {
      try {
        cache_.tokens = s.load_prefix(file);
        loaded = cache_.tokens == prefix;
      } catch (const Error&) {
        loaded = false;  // a damaged or foreign file: prefill instead, and overwrite it
      }
      if (!loaded) {
        s.rewind(0);
        cache_.tokens.clear();
      }
    }
    if (loaded) {
      reused = prefix.size();
    } else {
      // Prefill the prefix alone and save it for the next process.
      const auto t = Clock::now();
      s.rewind(reused);
      s.decode(std::span<const int32_t>(prefix).subspan(reused));
      cache_.tokens = prefix;
      s.save_prefix(file, prefix);
      extra_prefill = seconds_since(t);
    }
  }
  GenerateOptions g = o_.generation;
  for (const std::string& stop : template_stops(template_)) g.stop.push_back(stop);
  const CachedGeneration gen = generate_cached(cache_, ids, g, on_text);
  const GenerateResult& res = gen.result;
  r.reused_tokens = std::min(static_cast<int64_t>(reused), gen.reused_tokens);
  r.answer = res.text;
  r.completion_tokens = res.completion_tokens;
  r.finish_reason = res.finish_reason;
  r.prefill_seconds = res.prefill_seconds + extra_prefill;
  r.decode_seconds = res.decode_seconds;
  return r;
}

AskResult Conversation::map_reduce(const std::string& question, const std::function<bool(std::string_view)>& on_text) {
  const Context whole = whole_text();
  // Parts that leave room for the instructions and a partial summary in the window.
  const int64_t overhead = static_cast<int64_t>(build_prompt("", {{"user", question}}).ids.size()) + 64;
  const int64_t part_tokens = budget_ - overhead - o_.generation.max_tokens;
  if (part_tokens < 256) throw Error("--long-budget is too small to summarise in parts; raise it or lower -n");
  const auto parts = retrieval::chunk_document({"context", whole.text, {}}, model_.tokenizer(), {.chunk_tokens = part_tokens});
  constexpr size_t kMaxParts = 64;
  if (parts.size() > kMaxParts)
    throw Error("the text needs " + std::to_string(parts.size()) + " window-sized parts to summarise (at most " +
                std::to_string(kMaxParts) + "); ask about a part, or raise --long-budget");
  std::string partials;
  AskResult total;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string part = whole.text.substr(parts[i].begin, parts[i].end - parts[i].begin);
    const std::string instruction = "Summarize this part of the document (part " + std::to_string(i + 1) + " of " +
                                    std::to_string(parts.size()) + ").";
    const AskResult r = answer(checked(build_prompt(part, {{"user", instruction}})), {});
    partials += (partials.empty() ? "" : "\n\n") + ("Part " + std::to_string(i + 1) + ": " + r.answer);
    total.prefill_seconds += r.prefill_seconds;
    total.decode_seconds += r.decode_seconds;
    total.completion_tokens += r.completion_tokens;
    total.prompt_tokens += r.prompt_tokens;
  }
  std::vector<Turn> turns = turns_;
  turns.push_back({"user", question});
  AskResult r = answer(checked(build_prompt("Summaries of consecutive parts of the document:\n\n" + partials, turns)), on_text);
  r.prefill_seconds += total.prefill_seconds;
  r.decode_seconds += total.decode_seconds;
  r.prompt_tokens += total.prompt_tokens;
  r.completion_tokens += total.completion_tokens;
  r.citations = whole.citations;
  return r;
}

Conversation::Prepared Conversation::prepare(const std::string& question) {
  if (question.find_first_not_of(" \t\r\n") == std::string::npos) throw Error("the question is empty");
  Prepared p;
  p.question = question;
  std::vector<Turn> turns = turns_;
  turns.push_back({"user", question});

  // Size the whole-text prompt; an index's token count tells without reading it when it is too big.
  int64_t whole_tokens = 0;
  Context whole;
  Prompt whole_prompt;
  const int64_t index_tokens = index_ && temp_index_dir_.empty() ? index_->stats().store.tokens : 0;
  if (index_tokens > budget_) {
    whole_tokens = index_tokens;
  } else {
    whole = whole_text();
    whole_prompt = build_prompt(whole.text, turns);
    whole_tokens = static_cast<int64_t>(whole_prompt.ids.size());
  }
  const RouteDecision d = choose_route(o_.mode, whole_tokens, o_.generation.max_tokens, budget_, is_summary_request(question));
  p.route = d.route;
  p.reason = d.reason;
  if (d.route == Route::Long) {
    p.prompt = checked(std::move(whole_prompt));
    p.citations = std::move(whole.citations);
  } else if (d.route == Route::Rag) {
    // The best-ranked chunks that fit the context with the answer: a short-context model asked with
    // the default k gets fewer chunks, and the reason says so; not even the first: the clear error.
    const std::vector<retrieval::SearchResult> found = retrieve(question, p.retrieval_seconds);
    const ChunkOrder order = o_.chunk_order.value_or(rag_chunk_order(context_limit()));
    size_t n = found.size();
    Context c = joined(found, n, order);
    Prompt prompt = build_prompt(c.text, turns);
    while (n > 1 && !fits_with_answer(prompt)) {
      c = joined(found, --n, order);
      prompt = build_prompt(c.text, turns);
    }
    if (!temp_index_dir_.empty()) p.reason += "; the documents in chunks of " + std::to_string(doc_chunk_tokens()) + " tokens";
    if (order == ChunkOrder::BestLast) p.reason += "; the best chunk last, nearest the question";
    if (n < found.size())
      p.reason += "; the best " + std::to_string(n) + " of " + std::to_string(found.size()) + " retrieved chunks fit the context of " +
                  std::to_string(context_limit()) + " positions";
    p.prompt = checked(std::move(prompt));
    p.citations = std::move(c.citations);
  }
  return p;
}

AskResult Conversation::run(const Prepared& p, const std::function<bool(std::string_view)>& on_text) {
  AskResult r = p.route == Route::MapReduce ? map_reduce(p.question, on_text) : answer(p.prompt, on_text);
  if (p.route != Route::MapReduce) r.citations = p.citations;
  r.route = p.route;
  r.route_reason = p.reason;
  r.retrieval_seconds = p.retrieval_seconds;
  turns_.push_back({"user", p.question});
  turns_.push_back({"assistant", r.answer});
  return r;
}

}  // namespace longqa::qa
