// The kernels' prefetch setting: its text form, and TilePrefetch's incremental offsets
// against the direct formula (row r + k * R, position pos + lead - k * row_bytes).
#include <gtest/gtest.h>

#include <stdexcept>

#include "hwy/highway.h"
#include "simd/prefetch-inl.h"
#include "simd/prefetch.h"

namespace qrun {
namespace {

TEST(PrefetchConfig, ParsesOneDistanceForBothWidths) {
  const PrefetchConfig c = parse_prefetch_config("l1:3k");
  EXPECT_EQ(c.level, PrefetchLevel::L1);
  EXPECT_EQ(c.distance, 3072);
  EXPECT_EQ(c.distance_wide, 3072);
  EXPECT_EQ(describe(c), "l1+3KiB");
  const PrefetchConfig l2 = parse_prefetch_config("l2:1000");
  EXPECT_EQ(l2.level, PrefetchLevel::L2);
  EXPECT_EQ(describe(l2), "l2+1000B");
  EXPECT_EQ(describe(parse_prefetch_config("none")), "none");
}

TEST(PrefetchConfig, ParsesASeparateDistanceForWideRows) {
  const PrefetchConfig c = parse_prefetch_config("l1:8K/3k");
  EXPECT_EQ(c.distance, 8192);
  EXPECT_EQ(c.distance_wide, 3072);
  EXPECT_EQ(describe(c), "l1+8KiB, q8/float 3KiB");

  set_prefetch_config(c);
  EXPECT_EQ(prefetch_config_for(false).distance, 8192);
  EXPECT_EQ(prefetch_config_for(true).distance, 3072);
  EXPECT_EQ(prefetch_config_for(true).level, PrefetchLevel::L1);
  set_prefetch_config(PrefetchConfig{});
}

TEST(PrefetchConfig, ParsesMatvecRows) {
  EXPECT_EQ(parse_prefetch_config("l1:8k/3k").matvec_rows, 4);
  const PrefetchConfig c = parse_prefetch_config("l1:8k/3k,rows:1");
  EXPECT_EQ(c.matvec_rows, 1);
  EXPECT_EQ(c.distance_wide, 3072);
  EXPECT_EQ(describe(c), "l1+8KiB, q8/float 3KiB, q8/q6/q5 matvec by single rows");
  EXPECT_EQ(parse_prefetch_config("none,rows:1").level, PrefetchLevel::None);
  EXPECT_EQ(describe(parse_prefetch_config("none,rows:1")), "none, q8/q6/q5 matvec by single rows");
  EXPECT_EQ(parse_prefetch_config("l2:16k,rows:4").matvec_rows, 4);
}

TEST(PrefetchConfig, RejectsMalformedText) {
  for (const char* text : {"", "l1", "l1:", "l3:3k", "L1:3k", "l1:3m", "l1:-3k", "l1:3k/", "l1:/8k", "l1:3k/8k/1k",
                           "l1:32", "l2:2000k", "l1:3k/2000k", "none:1k", "l1:9999999", "l1:3k,", "l1:3k,rows:2",
                           "l1:3k,rows:", ",rows:1", "l1:3k,rows:1,rows:1"}) {
    EXPECT_THROW(parse_prefetch_config(text), std::invalid_argument) << "'" << text << "'";
  }
}

}  // namespace
}  // namespace qrun

// TilePrefetch is HWY_INLINE for the kernels, so the code that calls it is compiled for
// the static target too (calling it from plain code fails to inline on aarch64).
HWY_BEFORE_NAMESPACE();
namespace qrun {
namespace HWY_NAMESPACE {
namespace {

// Walks a tile's rows as the kernels do (every 64 bytes, position nondecreasing) and
// checks each offset against the target computed directly.
template <int R>
void ExpectDirectTargets(int64_t row_bytes, int64_t distance) {
  const PrefetchConfig pf{PrefetchLevel::L1, distance, distance};
  TilePrefetch<R> ahead(pf, row_bytes);
  const int64_t lead = distance / R;
  for (int64_t pos = 0; pos < row_bytes; pos += 64) {
    const int64_t target = pos + lead;            // position in row r's sequence r, r + R, r + 2R, ...
    const int64_t rows_on = target / row_bytes;   // k
    const int64_t expected = (rows_on * R) * row_bytes + target % row_bytes - pos;  // from row r, pos
    ASSERT_EQ(ahead.At(pos), expected) << "R " << R << " row_bytes " << row_bytes << " distance " << distance
                                       << " pos " << pos;
  }
}

void ExpectPlainDistanceForOneRow() {
  TilePrefetch<1> ahead(PrefetchConfig{PrefetchLevel::L2, 4096, 4096}, 1152);
  for (int64_t pos = 0; pos < 1152; pos += 64) EXPECT_EQ(ahead.At(pos), 4096);
}

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

namespace qrun {
namespace {

TEST(TilePrefetch, EachRowLeadsIntoTheNextTilesRow) {
  // Row lengths of real shapes (q4 and q8 rows of 64, 2048 and 5632 columns) and odd ones.
  for (const int64_t row_bytes : {36, 68, 1152, 2176, 6336, 11968, 100, 4097}) {
    for (const int64_t distance : {64, 1000, 3072, 8192, 24576, 1 << 20}) {
      HWY_NAMESPACE::ExpectDirectTargets<1>(row_bytes, distance);
      HWY_NAMESPACE::ExpectDirectTargets<2>(row_bytes, distance);
      HWY_NAMESPACE::ExpectDirectTargets<4>(row_bytes, distance);
    }
  }
}

TEST(TilePrefetch, OneRowIsAPlainDistance) { HWY_NAMESPACE::ExpectPlainDistanceForOneRow(); }

}  // namespace
}  // namespace qrun
