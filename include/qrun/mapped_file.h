// A read-only view of a whole file: mmap(MAP_SHARED) so processes share one copy in
// the page cache, optionally mlock'ed, or a private heap copy (--no-mmap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace qrun {

enum class LoadMode { Mmap, MmapLocked, ReadPrivate };

// A file truncated (or rewritten in place, or whose storage fails) while mapped makes
// the next read of a lost page raise SIGBUS, which kills the process without a word.
// This installs a SIGBUS handler for the tools' main(): a fault inside the mapping of
// any live MappedFile prints
//   "<program>: <file> changed while mapped; replace model files by rename, never in place"
// to stderr, runs `cleanup` (async-signal-safe work only) and exits with status 1. A
// SIGBUS anywhere else keeps its default action. Calling it again replaces the first.
void install_mapping_fault_handler(const char* program, void (*cleanup)() = nullptr);

class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(const std::string& path, LoadMode mode);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  bool is_mapped() const { return mapped_; }
  int fd() const { return fd_; }

  // Page-cache hints over [offset, offset+len), rounded out to whole pages. No-ops for
  // a private copy. Return false when the kernel refused (the caller may report it).
  bool prefetch(uint64_t offset, uint64_t len) const;   // MADV_WILLNEED
  // Reads the range in and maps it (MADV_POPULATE_READ; WILLNEED where the kernel is
  // older than 5.14). Blocks until done: call it from a prefetch thread.
  bool populate(uint64_t offset, uint64_t len) const;
  // populate() of exactly the range: the page cache reads [offset, offset+len) as asked
  // (POSIX_FADV_WILLNEED) before the pages are mapped. With random_access() over it,
  // the faults that map them read no more, where a fault otherwise reads the device's
  // read-ahead window around it (8 MiB on the development VM: ten times a
  // Qwen3-30B-A3B expert's rows).
  bool populate_exactly(uint64_t offset, uint64_t len) const;
  bool random_access(uint64_t offset, uint64_t len) const;  // MADV_RANDOM: no read-around
  bool release(uint64_t offset, uint64_t len) const;    // MADV_DONTNEED (+ fadvise when asked)
  bool lock(uint64_t offset, uint64_t len) const;       // mlock

 private:
  void reset();
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;
  int fd_ = -1;
  int fault_slot_ = -1;  // where the SIGBUS handler finds this mapping; -1 when not listed
};

}  // namespace qrun
