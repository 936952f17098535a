// This process's memory as the kernel counts it. Mapped model pages are "file"
// memory shared through the page cache; "anon" is private to this process.
#pragma once

#include <cstdint>

namespace qrun {

struct MemoryStats {
  uint64_t peak_rss = 0;   // VmHWM
  uint64_t rss = 0;        // VmRSS
  uint64_t rss_anon = 0;   // RssAnon: private
  uint64_t rss_file = 0;   // RssFile: mapped files (shared)
};

MemoryStats read_memory_stats();   // zeros where /proc is unavailable

// Bytes this process has caused to be read from storage so far (/proc/self/io).
uint64_t storage_bytes_read();

}  // namespace qrun
