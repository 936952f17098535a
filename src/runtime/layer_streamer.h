// Layer streaming under a memory budget (--mem-budget): the first layers that fit
// stay resident; the rest are read one layer ahead by a prefetch thread
// (MADV_POPULATE_READ: read in and mapped, so the compute threads never fault) and
// dropped right after use (MADV_DONTNEED + POSIX_FADV_DONTNEED), so the model runs in
// less memory than its size without the thrashing of plain mmap under pressure. Each
// layer is one contiguous range of the file, so each request is one call.
//
// A mixture-of-experts layer stores its experts last: the read-ahead takes the part
// before them (attention, norms, router), and the experts a token's router picks are
// read when it has picked them (fetch_experts), so a streamed layer costs its dense part
// and k experts, not all of them. A prompt batch reads and drops one expert at a time.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "qrun/model_file.h"
#include "qrun/run_plan.h"

namespace qrun {

struct StreamingPlan {
  std::vector<bool> resident;     // per layer: stays mapped (false: streamed, or not on the host)
  uint64_t resident_bytes = 0;    // global tensors + resident layers
  uint64_t window_bytes = 0;      // two streamed layers in flight (current + next)
};

// What streaming a layer reads: its range, and of a mixture-of-experts layer the part
// before the experts and each stacked expert tensor (one expert's rows: offset + e * bytes).
struct LayerStreamRanges {
  uint64_t offset = 0, size = 0;  // the whole layer
  uint64_t ahead = 0;             // bytes from offset read ahead (size for a dense layer)
  struct Stacked {
    uint64_t offset, expert_bytes;
  };
  std::vector<Stacked> experts;   // empty for a dense layer
  // Bytes one token's step keeps in flight: the read-ahead part and k experts.
  uint64_t step_bytes(uint32_t k) const;
};
LayerStreamRanges layer_stream_ranges(const ModelFile& file, int layer);

// Bytes of an untied embedding that a mapped run never pages in: it is read one row per
// token, so only the rows of at most `tokens` distinct tokens (whole pages each) become
// resident. 0 for a tied embedding, which is also the output head and read whole.
uint64_t embedding_bytes_not_paged_in(const ModelFile& file, uint64_t tokens);
// The same for an untied table of `table_bytes` over `vocab` rows.
uint64_t table_bytes_not_paged_in(uint64_t table_bytes, uint64_t vocab, uint64_t tokens);

// Which of the host layers (`host[l]`; GPU layers are not) fit in `budget` after
// `fixed_bytes` (KV cache, scratch, runtime), first ones first. Throws with the numbers
// when even one streamed layer cannot fit.
StreamingPlan plan_streaming(const ModelFile& file, const std::vector<bool>& host, uint64_t budget,
                             uint64_t fixed_bytes);

// Streams the layers the run plan marks Streamed; resident layers stay, GPU layers are
// never touched (their weights live on the device).
class LayerStreamer {
 public:
  LayerStreamer(const ModelFile& file, const std::vector<LayerPlace>& places, bool lock_resident);
  ~LayerStreamer();
  LayerStreamer(const LayerStreamer&) = delete;
  LayerStreamer& operator=(const LayerStreamer&) = delete;

  bool enabled() const { return enabled_; }
  int n_layers() const { return static_cast<int>(places_.size()); }
  // How many times `layer` was queued for reading (tests: GPU and resident layers never).
  int reads(int layer) const { return reads_[static_cast<size_t>(layer)]; }
  // Bytes asked for so far: read-ahead parts and experts.
  uint64_t bytes_requested() const { return bytes_requested_; }
  bool streamed(int layer) const { return places_[static_cast<size_t>(layer)] == LayerPlace::Streamed; }

  void before_layer(int layer);   // make sure `layer` is on its way, and read ahead the next
  void after_layer(int layer);    // drop a streamed layer
  // Read (drop) these experts of a streamed mixture-of-experts layer; no-ops otherwise.
  void fetch_experts(int layer, std::span<const int32_t> experts);
  void drop_experts(int layer, std::span<const int32_t> experts);

 private:
  int next_streamed(int layer) const;  // the next streamed layer after `layer`, wrapping; -1: none
  void prefetch(int layer);
  void prefetch_loop();
  void drop(uint64_t offset, uint64_t size) const;  // unmap and evict a streamed range

  const ModelFile* file_;
  std::vector<LayerPlace> places_;
  std::vector<LayerStreamRanges> ranges_;
  std::vector<int> reads_;
  uint64_t bytes_requested_ = 0;
  bool enabled_ = false;
  std::vector<bool> requested_;   // compute thread only

  // The prefetch thread's queue; `loading_` is the layer it is reading (-1: none), so
  // a release never races a read of the same range.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> queue_;
  int loading_ = -1;
  bool stop_ = false;
  std::thread prefetcher_;
};

}  // namespace qrun
