#include "src/runtime/layer_streamer.h"

#include <fcntl.h>

#include <algorithm>
#include <cstdio>

#include "qrun/error.h"

namespace qrun {

namespace {
// One decimal: a budget just under what is needed must not print as the same figure.
std::string mib(uint64_t b) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  return text;
}
}  // namespace

uint64_t embedding_bytes_not_paged_in(const ModelFile& file, uint64_t tokens) {
  const auto& hp = file.hparams();
  if (hp.tied_embeddings) return 0;
  for (const auto& t : file.tensors())
    if (t.name == "tok_embeddings") return table_bytes_not_paged_in(t.size, hp.vocab_size, tokens);
  return 0;
}

uint64_t table_bytes_not_paged_in(uint64_t table_bytes, uint64_t vocab, uint64_t tokens) {
  const uint64_t page = 4096, row = table_bytes / std::max<uint64_t>(1, vocab);
  const uint64_t touched = std::min(table_bytes, std::min(tokens, vocab) * ((row + page - 1) / page * page));
  return table_bytes - touched;
}

LayerStreamRanges layer_stream_ranges(const ModelFile& file, int layer) {
  const auto& hp = file.hparams();
  LayerStreamRanges r;
  r.offset = file.layers()[static_cast<size_t>(layer)].offset;
  r.size = r.ahead = file.layers()[static_cast<size_t>(layer)].size;
  if (hp.n_experts == 0) return r;
  uint64_t dense_end = r.offset, experts_begin = r.offset + r.size;
  for (const auto& t : file.tensors()) {
    if (t.layer != layer) continue;
    if (t.name.ends_with("_experts")) {
      r.experts.push_back({t.offset, t.size / hp.n_experts});
      experts_begin = std::min(experts_begin, t.offset);
    } else {
      dense_end = std::max(dense_end, t.offset + t.size);
    }
  }
  // The writer puts the experts last; a file that does not is streamed whole.
  if (r.experts.empty() || dense_end > experts_begin) {
    r.experts.clear();
    return r;
  }
  r.ahead = experts_begin - r.offset;
  return r;
}

uint64_t LayerStreamRanges::step_bytes(uint32_t k) const {
  uint64_t b = ahead;
  for (const Stacked& s : experts) b += k * s.expert_bytes;
  return experts.empty() ? size : b;
}

StreamingPlan plan_streaming(const ModelFile& file, const std::vector<bool>& host, uint64_t budget,
                             uint64_t fixed_bytes) {
  StreamingPlan plan;
  const auto& layers = file.layers();
  plan.resident.assign(layers.size(), false);
  // The few embedding rows a run touches fit in the slack the budget keeps.
  for (const auto& t : file.tensors())
    if (t.layer < 0) plan.resident_bytes += t.size;
  plan.resident_bytes -= embedding_bytes_not_paged_in(file, 0);
  uint64_t largest = 0;
  for (size_t l = 0; l < layers.size(); ++l)
    if (host[l]) largest = std::max(largest, layer_stream_ranges(file, static_cast<int>(l)).step_bytes(file.hparams().n_experts_used));
  plan.window_bytes = 2 * largest;
  const uint64_t needed = fixed_bytes + plan.resident_bytes + plan.window_bytes;
  if (needed > budget)
    throw Error(file.path(), -1,
                "memory budget " + mib(budget) + " is too small: KV cache, buffers and runtime need " +
                    mib(fixed_bytes) + ", embeddings and head " + mib(plan.resident_bytes) +
                    ", and two streamed layers " + mib(plan.window_bytes) + " (at least " + mib(needed) +
                    "; lower -c or raise --mem-budget)");
  uint64_t left = budget - needed;
  bool all = true;
  for (size_t l = 0; l < layers.size(); ++l) {
    if (!host[l]) continue;
    if (all && layers[l].size <= left) {
      left -= layers[l].size;
      plan.resident_bytes += layers[l].size;
      plan.resident[l] = true;
    } else {
      all = false;  // resident layers are a prefix of the host layers
    }
  }
  // All host layers resident: no streaming window needed.
  if (all) plan.window_bytes = 0;
  return plan;
}

LayerStreamer::LayerStreamer(const ModelFile& file, const std::vector<LayerPlace>& places, bool lock_resident)
    : file_(&file), places_(places), reads_(places.size(), 0),
      enabled_(std::count(places.begin(), places.end(), LayerPlace::Streamed) > 0),
      requested_(places.size(), false) {
  if (lock_resident && enabled_) {
    for (size_t l = 0; l < places.size(); ++l) {
      const auto& r = file.layers()[l];
      if (places[l] == LayerPlace::Resident && !file.mapping().lock(r.offset, r.size))
        throw Error(file.path(), -1, "cannot mlock the resident layers (RLIMIT_MEMLOCK); run without --mlock");
    }
  }
  for (size_t l = 0; l < places.size(); ++l) {
    ranges_.push_back(layer_stream_ranges(file, static_cast<int>(l)));
    // A streamed layer read in parts: no fault there may read the rest around it.
    if (places[l] == LayerPlace::Streamed && !ranges_.back().experts.empty())
      file.mapping().random_access(ranges_.back().offset, ranges_.back().size);
  }
  if (enabled_) prefetcher_ = std::thread([this] { prefetch_loop(); });
}

int LayerStreamer::next_streamed(int layer) const {
  for (int k = 1; k <= n_layers(); ++k) {
    const int l = (layer + k) % n_layers();
    if (streamed(l)) return l;
  }
  return -1;
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
    const LayerStreamRanges& r = ranges_[static_cast<size_t>(loading_)];
    lock.unlock();
    // A layer read whole may read past its end; a part must not read into the experts.
    if (r.experts.empty()) file_->mapping().populate(r.offset, r.ahead);
    else file_->mapping().populate_exactly(r.offset, r.ahead);
    lock.lock();
    loading_ = -1;
    cv_.notify_all();
  }
}

void LayerStreamer::prefetch(int layer) {
  if (layer < 0 || !streamed(layer) || requested_[static_cast<size_t>(layer)]) return;
  requested_[static_cast<size_t>(layer)] = true;
  ++reads_[static_cast<size_t>(layer)];
  bytes_requested_ += ranges_[static_cast<size_t>(layer)].ahead;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(layer);
  }
  cv_.notify_all();
}

void LayerStreamer::before_layer(int layer) {
  if (!enabled_) return;
  prefetch(layer);
  // The next streamed layer; after the last one, the first streamed one of the next pass.
  prefetch(next_streamed(layer));
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
  drop(r.offset, r.size);
  requested_[static_cast<size_t>(layer)] = false;
}

void LayerStreamer::drop(uint64_t offset, uint64_t size) const {
  file_->mapping().release(offset, size);
  // Drop the clean page-cache copy too; the kernel keeps pages other processes map.
  ::posix_fadvise(file_->mapping().fd(), static_cast<off_t>(offset), static_cast<off_t>(size), POSIX_FADV_DONTNEED);
}

// In the compute thread: the router has just picked them and the layer needs them now.
void LayerStreamer::fetch_experts(int layer, std::span<const int32_t> experts) {
  if (!enabled_ || !streamed(layer)) return;
  for (const auto& s : ranges_[static_cast<size_t>(layer)].experts)
    for (const int32_t e : experts) {
      file_->mapping().populate_exactly(s.offset + static_cast<uint64_t>(e) * s.expert_bytes, s.expert_bytes);
      bytes_requested_ += s.expert_bytes;
    }
}

void LayerStreamer::drop_experts(int layer, std::span<const int32_t> experts) {
  if (!enabled_ || !streamed(layer)) return;
  for (const auto& s : ranges_[static_cast<size_t>(layer)].experts)
    for (const int32_t e : experts) drop(s.offset + static_cast<uint64_t>(e) * s.expert_bytes, s.expert_bytes);
}

}  // namespace qrun
