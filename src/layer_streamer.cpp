#include "src/layer_streamer.h"

#include <fcntl.h>

#include <algorithm>
#include <cstdio>

#include "qrun/error.h"

namespace qrun {

namespace {
std::string mib(uint64_t b) { return std::to_string((b + (1 << 20) - 1) >> 20) + " MiB"; }
}  // namespace

uint64_t embedding_bytes_not_paged_in(const ModelFile& file, uint64_t tokens) {
  const auto& hp = file.hparams();
  if (hp.tied_embeddings) return 0;
  for (const auto& t : file.tensors()) {
    if (t.name != "tok_embeddings") continue;
    const uint64_t page = 4096, row = t.size / std::max<uint64_t>(1, hp.vocab_size);
    const uint64_t touched = std::min<uint64_t>(t.size, std::min<uint64_t>(tokens, hp.vocab_size) *
                                                            ((row + page - 1) / page * page));
    return t.size - touched;
  }
  return 0;
}

StreamingPlan plan_streaming(const ModelFile& file, uint64_t budget, uint64_t fixed_bytes) {
  StreamingPlan plan;
  // The few embedding rows a run touches fit in the slack the budget keeps.
  for (const auto& t : file.tensors())
    if (t.layer < 0) plan.resident_bytes += t.size;
  plan.resident_bytes -= embedding_bytes_not_paged_in(file, 0);
  uint64_t largest = 0;
  for (const auto& r : file.layers()) largest = std::max(largest, r.size);
  plan.window_bytes = 2 * largest;
  const uint64_t needed = fixed_bytes + plan.resident_bytes + plan.window_bytes;
  if (needed > budget)
    throw Error(file.path(), -1,
                "memory budget " + mib(budget) + " is too small: KV cache, buffers and runtime need " +
                    mib(fixed_bytes) + ", embeddings and head " + mib(plan.resident_bytes) +
                    ", and two streamed layers " + mib(plan.window_bytes) + " (at least " + mib(needed) +
                    "; lower -c or raise --mem-budget)");
  uint64_t left = budget - needed;
  const auto& layers = file.layers();
  while (plan.resident_layers < static_cast<int>(layers.size()) && layers[plan.resident_layers].size <= left) {
    left -= layers[plan.resident_layers].size;
    plan.resident_bytes += layers[plan.resident_layers].size;
    ++plan.resident_layers;
  }
  // All layers resident: no streaming window needed.
  if (plan.resident_layers == static_cast<int>(layers.size())) plan.window_bytes = 0;
  return plan;
}

LayerStreamer::LayerStreamer(const ModelFile& file, const StreamingPlan& plan, bool lock_resident)
    : file_(&file), plan_(plan), enabled_(plan.resident_layers < static_cast<int>(file.layers().size())),
      requested_(file.layers().size(), false) {
  if (lock_resident && plan.resident_layers > 0) {
    const auto& first = file.layers().front();
    const auto& last = file.layers()[static_cast<size_t>(plan.resident_layers - 1)];
    if (!file.mapping().lock(first.offset, last.offset + last.size - first.offset))
      throw Error(file.path(), -1, "cannot mlock the resident layers (RLIMIT_MEMLOCK); run without --mlock");
  }
  if (enabled_) prefetcher_ = std::thread([this] { prefetch_loop(); });
}

LayerStreamer::~LayerStreamer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (prefetcher_.joinable()) prefetcher_.join();
}

void LayerStreamer::prefetch_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    loading_ = queue_.front();
    queue_.pop_front();
    const auto& r = file_->layers()[static_cast<size_t>(loading_)];
    lock.unlock();
    file_->mapping().populate(r.offset, r.size);
    lock.lock();
    loading_ = -1;
    cv_.notify_all();
  }
}

void LayerStreamer::prefetch(int layer) {
  if (!streamed(layer) || requested_[static_cast<size_t>(layer)]) return;
  requested_[static_cast<size_t>(layer)] = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(layer);
  }
  cv_.notify_all();
}

void LayerStreamer::before_layer(int layer) {
  if (!enabled_) return;
  prefetch(layer);
  // The next streamed layer; after the last layer, the first streamed one of the next pass.
  const int next = layer + 1 < n_layers() ? layer + 1 : plan_.resident_layers;
  prefetch(next);
}

void LayerStreamer::after_layer(int layer) {
  if (!enabled_ || !streamed(layer)) return;
  {
    // Not while the prefetch thread still reads it (the compute threads got ahead of
    // the read by faulting the pages in themselves), nor after, from a stale request.
    std::unique_lock<std::mutex> lock(mu_);
    std::erase(queue_, layer);
    cv_.wait(lock, [&] { return loading_ != layer; });
  }
  const auto& r = file_->layers()[static_cast<size_t>(layer)];
  file_->mapping().release(r.offset, r.size);
  // Drop the clean page-cache copy too; the kernel keeps pages other processes map.
  ::posix_fadvise(file_->mapping().fd(), static_cast<off_t>(r.offset), static_cast<off_t>(r.size),
                  POSIX_FADV_DONTNEED);
  requested_[static_cast<size_t>(layer)] = false;
}

}  // namespace qrun
