// Writes small safetensors files for tests of the checkpoint reader and converter.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/test_paths.h"

namespace qrun::test {

struct RawTensor {
  std::string name;
  std::string dtype;   // "F32", "F16", "BF16", "I32", ...
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// `header_patch` lets a test lie in the header (e.g. about data_offsets).
inline void write_safetensors(const std::filesystem::path& path, const std::vector<RawTensor>& tensors,
                              const std::function<void(nlohmann::json&)>& header_patch = {}) {
  nlohmann::json h = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  if (header_patch) header_patch(h);
  const std::string js = h.dump();
  std::vector<uint8_t> out(8);
  const uint64_t n = js.size();
  std::memcpy(out.data(), &n, 8);
  out.insert(out.end(), js.begin(), js.end());
  for (const auto& t : tensors) out.insert(out.end(), t.bytes.begin(), t.bytes.end());
  write_bytes(path, out);
}

inline RawTensor f32_tensor(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v) {
  RawTensor t{name, "F32", std::move(shape), std::vector<uint8_t>(v.size() * 4)};
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

// A copy of the stories260K folder whose files a test may then break.
inline void copy_stories(const std::filesystem::path& to) {
  std::filesystem::copy(stories_dir(), to, std::filesystem::copy_options::recursive);
}

}  // namespace qrun::test
