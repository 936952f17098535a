#include "convert/model_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "qrun/error.h"

namespace qrun {

namespace {

char g_temp_path[4096];

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

void pwrite_all(int fd, const void* buf, uint64_t n, uint64_t offset, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      throw Error(path, static_cast<int64_t>(offset), std::string("write failed: ") + std::strerror(errno));
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

// Owns the temp file until it is renamed into place; unlinks it on failure.
class TempFile {
 public:
  explicit TempFile(const std::string& final_path) : final_(final_path) {
    const std::filesystem::path p(final_path);
    std::string tmpl = (p.parent_path().empty() ? std::filesystem::path(".") : p.parent_path()).string() + "/." +
                       p.filename().string() + ".tmp.XXXXXX";
    if (tmpl.size() >= sizeof g_temp_path) throw Error(final_path, -1, "output path too long");
    std::memcpy(g_temp_path, tmpl.c_str(), tmpl.size() + 1);
    fd_ = ::mkstemp(g_temp_path);
    if (fd_ < 0) {
      g_temp_path[0] = 0;
      throw Error(final_path, -1, std::string("cannot create a temporary file beside it: ") + std::strerror(errno));
    }
    path_ = g_temp_path;
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
    g_temp_path[0] = 0;
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  void commit() {
    if (::fchmod(fd_, 0644) != 0 || ::fsync(fd_) != 0)
      throw Error(path_, -1, std::string("fsync failed: ") + std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
    if (::rename(path_.c_str(), final_.c_str()) != 0)
      throw Error(final_, -1, std::string("rename failed: ") + std::strerror(errno));
    committed_ = true;
  }

 private:
  std::string final_;
  std::string path_;
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
  h.data_offset = align_up(h.tokenizer_offset + h.tokenizer_size, align);

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
      r.size = align_up(cursor + e.size, align) - r.offset;
    }
    cursor = align_up(cursor + e.size, align);
    summary.tensor_bytes += e.size;
    if (dtype_is_quantized(t.dtype)) {
      summary.quantized_weights += static_cast<uint64_t>(t.rows * t.cols);
      summary.quantized_bytes += e.size;
    }
  }
  h.file_size = cursor;
  summary.file_size = cursor;

  TempFile tmp(out_path);
  if (::ftruncate(tmp.fd(), static_cast<off_t>(h.file_size)) != 0)
    throw Error(tmp.path(), -1, std::string("cannot size the output file: ") + std::strerror(errno));

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
