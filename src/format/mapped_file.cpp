#include "qrun/mapped_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <utility>

#include "qrun/error.h"

namespace qrun {

namespace {

uint64_t page_size() {
  static const uint64_t p = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return p;
}

std::string errno_text() { return std::strerror(errno); }

// The live mappings, for the SIGBUS handler: fixed slots it can read without locks or
// allocation. A mapping past the last slot is simply not named (its fault stays a
// plain SIGBUS); 256 covers any checkpoint's shards.
struct FaultSlot {
  std::atomic<bool> used{false};
  std::atomic<uintptr_t> begin{0}, end{0};
  char path[1024];
};
FaultSlot g_slots[256];
const char* g_program = "qrun";
void (*g_cleanup)() = nullptr;

int list_mapping(const uint8_t* data, uint64_t size, const std::string& path) {
  for (int i = 0; i < static_cast<int>(std::size(g_slots)); ++i) {
    FaultSlot& s = g_slots[i];
    bool free = false;
    if (!s.used.compare_exchange_strong(free, true, std::memory_order_acq_rel)) continue;
    const size_t n = std::min(path.size(), sizeof s.path - 1);
    std::memcpy(s.path, path.data(), n);
    s.path[n] = 0;
    s.end.store(reinterpret_cast<uintptr_t>(data) + size, std::memory_order_relaxed);
    s.begin.store(reinterpret_cast<uintptr_t>(data), std::memory_order_release);
    return i;
  }
  return -1;
}

void unlist_mapping(int slot) {
  if (slot < 0) return;
  FaultSlot& s = g_slots[slot];
  s.begin.store(0, std::memory_order_release);
  s.end.store(0, std::memory_order_relaxed);
  s.used.store(false, std::memory_order_release);
}

void write_all(const char* s) {
  for (size_t n = std::strlen(s); n > 0;) {
    const ssize_t w = ::write(2, s, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return;
    }
    s += w;
    n -= static_cast<size_t>(w);
  }
}

void on_sigbus(int sig, siginfo_t* info, void*) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (FaultSlot& s : g_slots) {
    const uintptr_t b = s.begin.load(std::memory_order_acquire);
    if (b == 0 || addr < b || addr >= s.end.load(std::memory_order_relaxed)) continue;
    write_all("\n");
    write_all(g_program);
    write_all(": ");
    write_all(s.path);
    write_all(" changed while mapped; replace model files by rename, never in place\n");
    if (g_cleanup) g_cleanup();
    ::_exit(1);
  }
  // Not a mapped file's page: the default action, when the faulting access runs again.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
}

}  // namespace

void install_mapping_fault_handler(const char* program, void (*cleanup)()) {
  g_program = program;
  g_cleanup = cleanup;
  struct sigaction sa {};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGBUS, &sa, nullptr);
}

MappedFile::MappedFile(const std::string& path, LoadMode mode) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(path, -1, "cannot open: " + errno_text());
  struct stat st {};
  if (fstat(fd_, &st) != 0) {
    const std::string why = errno_text();
    reset();
    throw Error(path, -1, "cannot stat: " + why);
  }
  if (S_ISDIR(st.st_mode)) {
    reset();
    std::error_code ec;
    const bool checkpoint = std::filesystem::exists(std::filesystem::path(path) / "config.json", ec);
    throw Error(path, -1, checkpoint ? "is a Hugging Face checkpoint folder: convert it with qconvert first"
                                     : "is a directory, not a file");
  }
  if (!S_ISREG(st.st_mode)) {
    reset();
    throw Error(path, -1, "not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ == 0) {
    reset();
    throw Error(path, 0, "file is empty");
  }
  if (mode == LoadMode::ReadPrivate) {
    auto* buf = static_cast<uint8_t*>(std::malloc(size_));
    if (!buf) {
      reset();
      throw Error(path, -1, "out of memory reading " + std::to_string(size_) + " bytes");
    }
    uint64_t done = 0;
    while (done < size_) {
      const ssize_t n = ::pread(fd_, buf + done, size_ - done, static_cast<off_t>(done));
      if (n <= 0) {
        std::free(buf);
        const std::string why = n == 0 ? "unexpected end of file" : errno_text();
        reset();
        throw Error(path, static_cast<int64_t>(done), "read failed: " + why);
      }
      done += static_cast<uint64_t>(n);
    }
    data_ = buf;
    return;
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) {
    const std::string why = errno_text();
    reset();
    throw Error(path, -1, "mmap failed: " + why);
  }
  data_ = static_cast<const uint8_t*>(p);
  mapped_ = true;
  fault_slot_ = list_mapping(data_, size_, path_);
  if (mode == LoadMode::MmapLocked && !lock(0, size_)) {
    const std::string why = errno_text();
    struct rlimit rl {};
    getrlimit(RLIMIT_MEMLOCK, &rl);
    reset();
    throw Error(path, -1,
                "--mlock failed (" + why + "): the model needs " + std::to_string(size_ >> 20) +
                    " MiB locked but RLIMIT_MEMLOCK is " +
                    (rl.rlim_cur == RLIM_INFINITY ? std::string("unlimited")
                                                  : std::to_string(rl.rlim_cur >> 20) + " MiB") +
                    "; raise it with `ulimit -l` or run without --mlock");
  }
}

MappedFile::~MappedFile() { reset(); }

MappedFile::MappedFile(MappedFile&& o) noexcept { *this = std::move(o); }

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    reset();
    path_ = std::move(o.path_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mapped_ = std::exchange(o.mapped_, false);
    fd_ = std::exchange(o.fd_, -1);
    fault_slot_ = std::exchange(o.fault_slot_, -1);
  }
  return *this;
}

void MappedFile::reset() {
  unlist_mapping(fault_slot_);
  fault_slot_ = -1;
  if (data_) {
    if (mapped_) {
      ::munmap(const_cast<uint8_t*>(data_), size_);
    } else {
      std::free(const_cast<uint8_t*>(data_));
    }
  }
  if (fd_ >= 0) ::close(fd_);
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
  fd_ = -1;
}

namespace {
// Rounds [offset, offset+len) out to whole pages and clips it to the file.
bool page_range(uint64_t size, uint64_t offset, uint64_t len, uint64_t* begin, uint64_t* n) {
  if (offset >= size || len == 0) return false;
  const uint64_t end = std::min(size, offset + len);
  const uint64_t p = page_size();
  *begin = offset / p * p;
  *n = end - *begin;
  return true;
}
}  // namespace

bool MappedFile::prefetch(uint64_t offset, uint64_t len) const {
  uint64_t b, n;
  if (!mapped_ || !page_range(size_, offset, len, &b, &n)) return true;
  return ::madvise(const_cast<uint8_t*>(data_) + b, n, MADV_WILLNEED) == 0;
}

bool MappedFile::populate(uint64_t offset, uint64_t len) const {
#ifndef MADV_POPULATE_READ
  constexpr int MADV_POPULATE_READ = 22;  // Linux 5.14; older headers lack it
#endif
  uint64_t b, n;
  if (!mapped_ || !page_range(size_, offset, len, &b, &n)) return true;
  if (::madvise(const_cast<uint8_t*>(data_) + b, n, MADV_POPULATE_READ) == 0) return true;
  return errno == EINVAL && prefetch(offset, len);
}

bool MappedFile::populate_exactly(uint64_t offset, uint64_t len) const {
  uint64_t b, n;
  if (!mapped_ || !page_range(size_, offset, len, &b, &n)) return true;
  ::posix_fadvise(fd_, static_cast<off_t>(b), static_cast<off_t>(n), POSIX_FADV_WILLNEED);
  return populate(offset, len);
}

bool MappedFile::random_access(uint64_t offset, uint64_t len) const {
  uint64_t b, n;
  if (!mapped_ || !page_range(size_, offset, len, &b, &n)) return true;
  return ::madvise(const_cast<uint8_t*>(data_) + b, n, MADV_RANDOM) == 0;
}

bool MappedFile::release(uint64_t offset, uint64_t len) const {
  uint64_t b, n;
  if (!mapped_ || !page_range(size_, offset, len, &b, &n)) return true;
  // DONTNEED drops this process's page table entries; the page cache decides the rest,
  // so other processes sharing the file keep their copy.
  return ::madvise(const_cast<uint8_t*>(data_) + b, n, MADV_DONTNEED) == 0;
}

bool MappedFile::lock(uint64_t offset, uint64_t len) const {
  uint64_t b, n;
  if (!mapped_ || !page_range(size_, offset, len, &b, &n)) return true;
  return ::mlock(data_ + b, n) == 0;
}

}  // namespace qrun
