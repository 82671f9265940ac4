#include "data/line_reader.h"

#include <zlib.h>
#include <zstd.h>

#include <array>
#include <cstdio>
#include <cstring>

#include "util/error.h"

namespace longqa::data {

class LineReader::Source {
 public:
  virtual ~Source() = default;
  // Appends up to n bytes to out; returns the number appended, 0 at the end of the stream.
  virtual size_t read(std::string& out, size_t n) = 0;
};

namespace {

constexpr size_t kBlock = size_t{1} << 20;

class FileHandle {
 public:
  explicit FileHandle(const std::string& path) : f_(std::fopen(path.c_str(), "rb")) {
    if (!f_) throw Error(path + ": cannot open: " + std::strerror(errno));
  }
  ~FileHandle() { std::fclose(f_); }
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  std::FILE* get() const { return f_; }

 private:
  std::FILE* f_;
};

size_t read_raw(std::FILE* f, std::string& out, size_t n, const std::string& path) {
  const size_t old = out.size();
  out.resize(old + n);
  const size_t got = std::fread(out.data() + old, 1, n, f);
  out.resize(old + got);
  if (got == 0 && std::ferror(f)) throw Error(path + ": read error");
  return got;
}

class PlainSource final : public LineReader::Source {
 public:
  explicit PlainSource(const std::string& path) : path_(path), file_(path) {}
  size_t read(std::string& out, size_t n) override { return read_raw(file_.get(), out, n, path_); }

 private:
  std::string path_;
  FileHandle file_;
};

class GzipSource final : public LineReader::Source {
 public:
  explicit GzipSource(const std::string& path) : path_(path), file_(path) {
    std::memset(&z_, 0, sizeof z_);
    // 16 + MAX_WBITS: gzip framing; concatenated members (as `cat a.gz b.gz` makes) are handled below.
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) throw Error(path + ": zlib initialisation failed");
  }
  ~GzipSource() override { inflateEnd(&z_); }

  size_t read(std::string& out, size_t n) override {
    const size_t old = out.size();
    out.resize(old + n);
    z_.next_out = reinterpret_cast<Bytef*>(out.data() + old);
    z_.avail_out = static_cast<uInt>(n);
    while (z_.avail_out == n && !done_) {
      if (z_.avail_in == 0) {
        in_.clear();
        if (read_raw(file_.get(), in_, kBlock, path_) == 0) {
          if (in_member_) throw Error(path_ + ": truncated gzip stream");
          done_ = true;
          break;
        }
        z_.next_in = reinterpret_cast<Bytef*>(in_.data());
        z_.avail_in = static_cast<uInt>(in_.size());
      }
      in_member_ = true;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        in_member_ = false;
        inflateReset(&z_);
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        throw Error(path_ + ": corrupt gzip stream (" + (z_.msg ? z_.msg : "inflate failed") + ")");
      }
    }
    const size_t got = n - z_.avail_out;
    out.resize(old + got);
    return got;
  }

 private:
  std::string path_;
  FileHandle file_;
  z_stream z_;
  std::string in_;
  bool in_member_ = false, done_ = false;
};

class ZstdSource final : public LineReader::Source {
 public:
  explicit ZstdSource(const std::string& path) : path_(path), file_(path), z_(ZSTD_createDStream()) {
    if (!z_) throw Error(path + ": zstd initialisation failed");
  }
  ~ZstdSource() override { ZSTD_freeDStream(z_); }

  size_t read(std::string& out, size_t n) override {
    const size_t old = out.size();
    out.resize(old + n);
    ZSTD_outBuffer o{out.data() + old, n, 0};
    while (o.pos == 0 && !done_) {
      if (in_.pos == in_.size) {
        buf_.clear();
        if (read_raw(file_.get(), buf_, kBlock, path_) == 0) {
          if (pending_) throw Error(path_ + ": truncated zstd stream");
          done_ = true;
          break;
        }
        in_ = {buf_.data(), buf_.size(), 0};
      }
      const size_t rc = ZSTD_decompressStream(z_, &o, &in_);
      if (ZSTD_isError(rc)) throw Error(path_ + ": corrupt zstd stream (" + ZSTD_getErrorName(rc) + ")");
      pending_ = rc != 0;  // 0: a frame ended cleanly
    }
    out.resize(old + o.pos);
    return o.pos;
  }

 private:
  std::string path_;
  FileHandle file_;
  ZSTD_DStream* z_;
  std::string buf_;
  ZSTD_inBuffer in_{nullptr, 0, 0};
  bool pending_ = false, done_ = false;
};

std::unique_ptr<LineReader::Source> open_source(const std::string& path) {
  std::array<unsigned char, 4> magic{};
  {
    const FileHandle f(path);
    const size_t got = std::fread(magic.data(), 1, magic.size(), f.get());
    if (got >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) return std::make_unique<GzipSource>(path);
    if (got == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
      return std::make_unique<ZstdSource>(path);
  }
  return std::make_unique<PlainSource>(path);
}

}  // namespace

LineReader::LineReader(std::string path) : path_(std::move(path)), source_(open_source(path_)) {}
LineReader::~LineReader() = default;

bool LineReader::fill() {
  if (eof_) return false;
  buffer_.erase(0, pos_);
  pos_ = 0;
  if (source_->read(buffer_, kBlock) == 0) eof_ = true;
  return !eof_;
}

bool LineReader::next(std::string& line) {
  size_t scanned = pos_;
  for (;;) {
    const size_t nl = buffer_.find('\n', scanned);
    if (nl != std::string::npos) {
      size_t end = nl;
      if (end > pos_ && buffer_[end - 1] == '\r') --end;
      line.assign(buffer_, pos_, end - pos_);
      pos_ = nl + 1;
      ++line_;
      return true;
    }
    scanned = buffer_.size() - pos_;  // relative: fill() moves the unread bytes to the front
    if (!fill()) break;
  }
  if (pos_ >= buffer_.size()) return false;
  line.assign(buffer_, pos_, std::string::npos);  // a last line without '\n'
  if (!line.empty() && line.back() == '\r') line.pop_back();
  pos_ = buffer_.size();
  ++line_;
  return true;
}

bool LineReader::skip(uint64_t n) {
  std::string line;
  for (uint64_t i = 0; i < n; ++i)
    if (!next(line)) return false;
  return true;
}

}  // namespace longqa::data
