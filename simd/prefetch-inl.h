// prefetch_for_read (simd/prefetch.h) compiled for each Highway target: GCC does not
// inline the baseline function into target-specific kernels, and it drops a call that
// does nothing but prefetch.

#if defined(QRUN_SIMD_PREFETCH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QRUN_SIMD_PREFETCH_INL_H_
#undef QRUN_SIMD_PREFETCH_INL_H_
#else
#define QRUN_SIMD_PREFETCH_INL_H_
#endif

#include "hwy/highway.h"
#include "simd/prefetch.h"

HWY_BEFORE_NAMESPACE();
namespace qrun {
namespace HWY_NAMESPACE {

HWY_INLINE void PrefetchRow(const void* p, PrefetchLevel level) {
  if (level == PrefetchLevel::L2) __builtin_prefetch(p, 0, 2);
  else if (level == PrefetchLevel::L1) __builtin_prefetch(p, 0, 3);
}

// Where to prefetch while a tile reads R adjacent rows side by side: distance / R bytes
// ahead in each row and, past a row's end, on in row r + R (the next tile's), so each
// line is prefetched once and the bytes in flight are the configured distance whatever
// the row length. (A plain "distance bytes further in memory" lands in the tile's own
// rows, which are being read already, and leaves each row's first lines unprefetched.)
template <int R>
class TilePrefetch {
 public:
  TilePrefetch(const PrefetchConfig& pf, int64_t row_bytes) : row_bytes_(row_bytes) {
    const int64_t lead = pf.distance / R;
    const int64_t rows_ahead = lead / row_bytes;
    offset_ = lead + rows_ahead * (R - 1) * row_bytes;
    wrap_at_ = (rows_ahead + 1) * row_bytes - lead;
  }
  // Offset from row position `pos` to the byte to prefetch; pos must not decrease.
  HWY_INLINE int64_t At(int64_t pos) {
    while (pos >= wrap_at_) {
      offset_ += (R - 1) * row_bytes_;
      wrap_at_ += row_bytes_;
    }
    return offset_;
  }
  // For kernels that walk a row block by block: the R rows' prefetches at block b, once
  // per 64 bytes of row.
  HWY_INLINE void AtBlock(const uint8_t* w, int64_t b, int64_t block_bytes, PrefetchLevel level) {
    const int64_t pos = b * block_bytes;
    if (pos % 64 >= block_bytes) return;
    const int64_t offset = At(pos);
    for (int r = 0; r < R; ++r) PrefetchRow(w + r * row_bytes_ + pos + offset, level);
  }

 private:
  int64_t row_bytes_, offset_, wrap_at_;
};

}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#endif  // include guard
