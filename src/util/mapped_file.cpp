#include "util/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace longqa {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// Closes the descriptor on every path out of the constructor.
struct Fd {
  int fd;
  ~Fd() { ::close(fd); }
};

// Anonymous memory of `len` bytes (a multiple of kHugePage) starting on a 2 MiB boundary, so that the
// kernel can back all of it with huge pages: over-allocate by one huge page and trim both ends.
uint8_t* map_huge_aligned(size_t len, const std::string& path) {
  void* raw = ::mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw Error(path + ": cannot allocate " + std::to_string(len >> 20) + " MiB: " + std::strerror(errno));
  auto* base = static_cast<uint8_t*>(raw);
  auto* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + kHugePage - 1) & ~(kHugePage - 1));
  if (aligned > base) ::munmap(base, static_cast<size_t>(aligned - base));
  const size_t tail = static_cast<size_t>(base + len + kHugePage - (aligned + len));
  if (tail > 0) ::munmap(aligned + len, tail);
  // Without transparent huge pages (or with them off) this fails and the copy still works, on 4 KiB pages.
  ::madvise(aligned, len, MADV_HUGEPAGE);
  return aligned;
}

void read_all(int fd, uint8_t* dst, size_t size, const std::string& path) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, dst + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(path + ": cannot read: " + std::strerror(errno));
    if (n == 0) throw Error(path + ": file shrank while being read (" + std::to_string(done) + " of " + std::to_string(size) + " bytes)");
    done += static_cast<size_t>(n);
  }
}

}  // namespace

MappedFile::MappedFile(const std::string& path, FileResidency residency) : path_(path) {
  const Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st{};
  if (::fstat(f.fd, &st) != 0) throw Error(path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) return;
  if (residency == FileResidency::Mapped) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, f.fd, 0);
    if (p == MAP_FAILED) throw Error(path + ": cannot map: " + std::strerror(errno));
    data_ = static_cast<const uint8_t*>(p);
    mapped_ = size_;
    return;
  }
  const size_t len = (size_ + kHugePage - 1) & ~(kHugePage - 1);
  uint8_t* copy = map_huge_aligned(len, path);
  try {
    read_all(f.fd, copy, size_, path);
  } catch (...) {
    ::munmap(copy, len);
    throw;
  }
  ::mprotect(copy, len, PROT_READ);  // read-only like the mapping: a stray write faults
  data_ = copy;
  mapped_ = len;
  copy_ = true;
}

void MappedFile::edit(const std::function<void(std::span<uint8_t>)>& edit) {
  if (!copy_) throw Error(path_ + ": a mapped file cannot be edited in memory");
  if (size_ == 0) return;
  auto* bytes = const_cast<uint8_t*>(data_);  // the copy is ours; only its protection says read-only
  if (::mprotect(bytes, mapped_, PROT_READ | PROT_WRITE) != 0)
    throw Error(path_ + ": cannot make the copy writable: " + std::strerror(errno));
  struct Reprotect {
    uint8_t* p;
    size_t n;
    ~Reprotect() { ::mprotect(p, n, PROT_READ); }
  } reprotect{bytes, mapped_};
  edit({bytes, size_});
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(other.data_),
      size_(other.size_),
      mapped_(other.mapped_),
      copy_(other.copy_) {
  other.data_ = nullptr;
  other.size_ = 0;
  other.mapped_ = 0;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), mapped_);
}

}  // namespace longqa
