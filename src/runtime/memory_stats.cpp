#include "qrun/memory_stats.h"

#include <cstdio>
#include <cstring>

namespace qrun {

MemoryStats read_memory_stats() {
  MemoryStats m;
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return m;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long kb = 0;
    if (std::sscanf(line, "VmHWM: %llu kB", &kb) == 1) m.peak_rss = kb << 10;
    else if (std::sscanf(line, "VmRSS: %llu kB", &kb) == 1) m.rss = kb << 10;
    else if (std::sscanf(line, "RssAnon: %llu kB", &kb) == 1) m.rss_anon = kb << 10;
    else if (std::sscanf(line, "RssFile: %llu kB", &kb) == 1) m.rss_file = kb << 10;
  }
  std::fclose(f);
  return m;
}

uint64_t storage_bytes_read() {
  FILE* f = std::fopen("/proc/self/io", "r");
  if (!f) return 0;
  char line[128];
  unsigned long long v = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "read_bytes: %llu", &v) == 1) break;
  std::fclose(f);
  return v;
}

}  // namespace qrun
