#include "convert/model_writer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "qrun/error.h"

namespace qrun {

namespace {

char g_temp_path[4096];

void pwrite_all(int fd, const void* buf, uint64_t n, uint64_t offset, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      throw Error(path, static_cast<int64_t>(offset), std::string("write failed: ") + std::strerror(errno));
    }
    if (w == 0) {
      throw Error(path, static_cast<int64_t>(offset), "write failed: no progress");
    }
    p += w;
    n -= static_cast<uint64_t>(w);
    offset += static_cast<uint64_t>(w);
  }
}

void fill_parallel(const TensorToWrite& t, uint8_t* out, int threads) {
  const int64_t row_bytes = dtype_row_bytes(t.dtype, t.cols);
  const int n = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, t.rows / 16)));
  if (n == 1) {
    t.fill(0, t.rows, out);
    return;
  }
  std::vector<std::thread> pool;
  std::exception_ptr error;
  std::mutex error_mutex;
  for (int i = 0; i < n; ++i) {
    const int64_t b = t.rows * i / n, e = t.rows * (i + 1) / n;
    pool.emplace_back([&, b, e] {
      try {
        t.fill(b, e, out + b * row_bytes);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

// The named temporaries of one destination: ".<name>.tmp.XXXXXX" beside it.
std::string temp_prefix(const std::filesystem::path& final_path) {
  std::string prefix(1, '.');
  prefix += final_path.filename().string();
  prefix += ".tmp.";
  return prefix;
}

// Removes temporaries of the same destination left by a writer that died (SIGKILL,
// power loss) on a kernel or file system without O_TMPFILE, or in the instant between
// naming and renaming. A live writer holds an exclusive flock on its temporary, so one
// whose lock can be taken belongs to nobody.
void remove_stale_temporaries(const std::filesystem::path& dir, const std::string& prefix) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
    const int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) continue;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::flock(fd, LOCK_EX | LOCK_NB) == 0) ::unlink(it->path().c_str());
    ::close(fd);
  }
}

// Owns the output until it is linked into place. On Linux it is an O_TMPFILE: a file
// without a name, which the kernel frees when the process ends however it ends, so a
// killed conversion leaves nothing behind. Elsewhere (or where the file system lacks
// O_TMPFILE) it is a named temporary beside the destination, unlinked on failure and,
// if the process is killed, by the next conversion to the same destination.
class TempFile {
 public:
  explicit TempFile(const std::string& final_path) : final_(final_path) {
    const std::filesystem::path p(final_path);
    dir_ = p.parent_path().empty() ? std::string(".") : p.parent_path().string();
    prefix_ = temp_prefix(p);
    if (dir_.size() + 1 + prefix_.size() + 6 >= sizeof g_temp_path) throw Error(final_path, -1, "output path too long");
    remove_stale_temporaries(dir_, prefix_);
#ifdef O_TMPFILE
    fd_ = ::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
    if (fd_ >= 0) {
      ::flock(fd_, LOCK_EX);  // also guards the instant it has a temporary name in commit()
      return;
    }
#endif
    for (int attempt = 0;; ++attempt) {
      const std::string tmpl = dir_ + "/" + prefix_ + "XXXXXX";
      std::memcpy(g_temp_path, tmpl.c_str(), tmpl.size() + 1);
      fd_ = ::mkostemp(g_temp_path, O_CLOEXEC);
      if (fd_ < 0) {
        g_temp_path[0] = 0;
        throw Error(final_path, -1, std::string("cannot create a temporary file beside it: ") + std::strerror(errno));
      }
      path_ = g_temp_path;
      // Locked and still ours under that name (a concurrent sweep may have taken it
      // for stale between mkostemp and flock): then no sweep will touch it.
      struct stat mine {}, named {};
      if (::flock(fd_, LOCK_EX) == 0 && ::fstat(fd_, &mine) == 0 && ::stat(g_temp_path, &named) == 0 &&
          mine.st_ino == named.st_ino && mine.st_dev == named.st_dev)
        return;
      ::close(fd_);
      fd_ = -1;
      if (attempt == 10) {
        g_temp_path[0] = 0;
        throw Error(final_path, -1, "cannot keep a temporary file beside it (removed while being created)");
      }
    }
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !path_.empty()) ::unlink(path_.c_str());
    g_temp_path[0] = 0;
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  int fd() const { return fd_; }
  // What errors name: the destination (the temporary may have no name).
  const std::string& path() const { return final_; }

  // Sizes the file and reserves its blocks, so that a full disk is found before any
  // work is done (where the file system can reserve; else writes report it).
  void reserve(uint64_t size) {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
      throw Error(final_, -1, std::string("cannot size the output file: ") + std::strerror(errno));
    if (::fallocate(fd_, 0, 0, static_cast<off_t>(size)) != 0 && errno != EOPNOTSUPP && errno != ENOSYS &&
        errno != EINTR)
      throw Error(final_, -1, "cannot reserve " + std::to_string(size) + " bytes for the output: " + std::strerror(errno));
  }

  void commit() {
    if (::fchmod(fd_, 0644) != 0 || ::fsync(fd_) != 0)
      throw Error(final_, -1, std::string("fsync failed: ") + std::strerror(errno));
    if (path_.empty()) link_anonymous();
    if (::rename(path_.c_str(), final_.c_str()) != 0)
      throw Error(final_, -1, std::string("rename failed: ") + std::strerror(errno));
    committed_ = true;
    g_temp_path[0] = 0;
    ::close(fd_);
    fd_ = -1;
    const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);  // the rename itself survives a crash
      ::close(dfd);
    }
  }

 private:
  // Gives the O_TMPFILE a temporary name (rename then replaces any existing file
  // atomically; linkat cannot). Names are tried until one is free.
  void link_anonymous() {
    char proc[64];
    std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd_);
    std::random_device rd;
    static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::string name = dir_ + "/" + prefix_;
      for (int k = 0; k < 6; ++k) name += kChars[rd() % (sizeof kChars - 1)];
      std::memcpy(g_temp_path, name.c_str(), name.size() + 1);
      int rc = ::linkat(AT_FDCWD, proc, AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW);
      if (rc != 0 && errno == ENOENT) rc = ::linkat(fd_, "", AT_FDCWD, name.c_str(), AT_EMPTY_PATH);  // no /proc
      if (rc == 0) {
        path_ = name;
        return;
      }
      g_temp_path[0] = 0;
      if (errno != EEXIST) throw Error(final_, -1, std::string("cannot link the output into place: ") + std::strerror(errno));
    }
    throw Error(final_, -1, "cannot find a free temporary name beside it");
  }

  std::string final_;
  std::string dir_, prefix_;
  std::string path_;  // the temporary's name; empty while it has none
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

const char* model_writer_temp_path() { return g_temp_path; }

WriteSummary write_model_file(const std::string& out_path, const format::HParams& hp,
                              std::span<const uint8_t> tokenizer_blob,
                              const std::vector<TensorToWrite>& tensors, const WriteOptions& options) {
  const uint64_t align = format::kAlignment;
  format::FileHeader h{};
  std::memcpy(h.magic, format::kMagic, sizeof h.magic);
  h.version = format::kVersion;
  h.header_size = sizeof(format::FileHeader);
  h.alignment = align;
  h.hparams_offset = sizeof(format::FileHeader);
  h.hparams_size = sizeof(format::HParams);
  h.tensors_offset = h.hparams_offset + h.hparams_size;
  h.n_tensors = static_cast<uint32_t>(tensors.size());
  h.layers_offset = h.tensors_offset + tensors.size() * sizeof(format::TensorEntry);
  h.n_layers = hp.n_layers;
  h.tokenizer_offset = h.layers_offset + uint64_t{hp.n_layers} * sizeof(format::LayerRange);
  h.tokenizer_size = tokenizer_blob.size();
  h.data_offset = format::align_up(h.tokenizer_offset + h.tokenizer_size, align);

  // Layout: every tensor aligned; a layer's range runs from its first tensor to the
  // aligned end of its last, so the ranges tile the data area.
  std::vector<format::TensorEntry> entries(tensors.size());
  std::vector<format::LayerRange> layers(hp.n_layers);
  WriteSummary summary;
  uint64_t cursor = h.data_offset;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    auto& e = entries[i];
    if (t.name.size() > format::kMaxNameLen) throw Error(out_path, -1, "tensor name too long: " + t.name);
    std::memcpy(e.name, t.name.data(), t.name.size());
    e.dtype = static_cast<uint32_t>(t.dtype);
    e.n_dims = static_cast<uint32_t>(t.n_dims);
    e.ne[0] = static_cast<uint64_t>(t.cols);
    e.ne[1] = static_cast<uint64_t>(t.rows);
    e.offset = cursor;
    e.size = static_cast<uint64_t>(t.rows * dtype_row_bytes(t.dtype, t.cols));
    e.layer = t.layer;
    if (t.layer >= 0) {
      auto& r = layers.at(static_cast<size_t>(t.layer));
      if (r.size == 0) r.offset = cursor;
      r.size = format::align_up(cursor + e.size, align) - r.offset;
    }
    cursor = format::align_up(cursor + e.size, align);
    summary.tensor_bytes += e.size;
    if (dtype_is_quantized(t.dtype)) {
      summary.quantized_weights += static_cast<uint64_t>(t.rows * t.cols);
      summary.quantized_bytes += e.size;
    }
  }
  h.file_size = cursor;
  summary.file_size = cursor;

  TempFile tmp(out_path);
  tmp.reserve(h.file_size);

  std::vector<uint8_t> buf;
  uint64_t done = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto& e = entries[i];
    if (options.progress) options.progress({done, summary.tensor_bytes, &tensors[i].name});
    buf.assign(e.size, 0);
    fill_parallel(tensors[i], buf.data(), options.threads);
    e.checksum = XXH3_64bits(buf.data(), buf.size());
    pwrite_all(tmp.fd(), buf.data(), buf.size(), e.offset, tmp.path());
    done += e.size;
  }
  if (options.progress) options.progress({done, summary.tensor_bytes, nullptr});

  std::vector<uint8_t> meta(h.data_offset - sizeof(format::FileHeader), 0);
  auto put = [&](uint64_t offset, const void* p, uint64_t n) {
    std::memcpy(meta.data() + offset - sizeof(format::FileHeader), p, n);
  };
  put(h.hparams_offset, &hp, sizeof hp);
  put(h.tensors_offset, entries.data(), entries.size() * sizeof(format::TensorEntry));
  put(h.layers_offset, layers.data(), layers.size() * sizeof(format::LayerRange));
  if (!tokenizer_blob.empty()) put(h.tokenizer_offset, tokenizer_blob.data(), tokenizer_blob.size());
  h.meta_checksum = XXH3_64bits(meta.data(), meta.size());
  pwrite_all(tmp.fd(), meta.data(), meta.size(), sizeof(format::FileHeader), tmp.path());
  pwrite_all(tmp.fd(), &h, sizeof h, 0, tmp.path());
  tmp.commit();
  return summary;
}

}  // namespace qrun
