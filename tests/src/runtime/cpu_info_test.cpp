#include "qrun/cpu_info.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace qrun {
namespace {

std::vector<uint64_t> classes(std::initializer_list<std::pair<int, uint64_t>> runs) {
  std::vector<uint64_t> v;
  for (auto [count, value] : runs) v.insert(v.end(), static_cast<size_t>(count), value);
  return v;
}

TEST(PerformanceCoreCount, IntelHybridTakesTheCoreTypeOnly) {
  // Alder Lake i7-12700H: 6 performance (type 0x40 -> 2), 8 efficiency (0x20 -> 1).
  EXPECT_EQ(performance_core_count(classes({{6, 2}, {8, 1}})), 6);
  // Efficiency cores listed first, as Linux numbers some parts.
  EXPECT_EQ(performance_core_count(classes({{8, 1}, {4, 2}})), 4);
}

TEST(PerformanceCoreCount, ArmLeavesOutOnlyTheLittleCores) {
  // Snapdragon-like 1 prime (3.0 GHz) + 3 big (2.4 GHz) + 4 LITTLE (1.8 GHz).
  EXPECT_EQ(performance_core_count(classes({{1, 3000000000}, {3, 2400000000}, {4, 1800000000}})), 4);
  EXPECT_EQ(performance_core_count(classes({{4, 1800000000}, {4, 2400000000}})), 4);
}

TEST(PerformanceCoreCount, UniformOrUnknownTakesEveryCore) {
  EXPECT_EQ(performance_core_count(classes({{16, 0}})), 16);            // nothing known
  EXPECT_EQ(performance_core_count(classes({{4, 2400000000}})), 4);     // Raspberry Pi 5, Graviton
  EXPECT_EQ(performance_core_count(classes({{1, 0}})), 1);
  EXPECT_EQ(performance_core_count({}), 1);
  // Cores the process cannot run on read as 0 and are left out.
  EXPECT_EQ(performance_core_count(classes({{2, 0}, {6, 2}})), 6);
}

TEST(CpuInfo, DescriptionNamesLeftOutEfficiencyCores) {
  const CpuInfo& c = cpu_info();
  EXPECT_GE(c.physical_cores, 1);
  EXPECT_GE(c.other_cores, 0);
  const std::string text = cpu_description();
  EXPECT_NE(text.find(std::to_string(c.physical_cores) + " cores"), std::string::npos) << text;
  EXPECT_EQ(text.find("efficiency cores") != std::string::npos, c.other_cores > 0) << text;
}

}  // namespace
}  // namespace qrun
