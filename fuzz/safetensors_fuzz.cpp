// libFuzzer target: a safetensors file (convert/safetensors.h) through
// SafetensorsCheckpoint's header checks, then each accepted tensor read as f32.
//
// The input is model.safetensors. So that seeds can be the header alone (the first
// 8 + header_len bytes), the harness pads the data area with zeros up to the largest
// data_offsets end the header names (the file at most 64 MiB); a header it cannot read
// is written as it is.
#include <algorithm>
#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>

#include "convert/safetensors.h"
#include "fuzz/fuzz_util.h"

namespace {

constexpr uint64_t kMaxPaddedSize = 64u << 20;

std::vector<uint8_t> pad_data(const uint8_t* data, size_t size) {
  std::vector<uint8_t> f(data, data + size);
  if (size < 8) return f;
  uint64_t header_len;
  std::memcpy(&header_len, data, 8);
  if (header_len > size - 8) return f;
  uint64_t end = 0;
  try {
    const auto j = nlohmann::json::parse(data + 8, data + 8 + header_len);
    if (!j.is_object()) return f;
    for (const auto& [name, info] : j.items()) {
      if (!info.is_object() || !info.contains("data_offsets") || !info["data_offsets"].is_array()) continue;
      for (const auto& v : info["data_offsets"])
        if (v.is_number_unsigned()) end = std::max(end, v.get<uint64_t>());
    }
  } catch (const nlohmann::json::exception&) {
    return f;
  }
  const uint64_t want = 8 + header_len + end;
  if (end <= kMaxPaddedSize && want > f.size() && want <= kMaxPaddedSize) f.resize(want, 0);
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qrun;
  const std::vector<uint8_t> file = pad_data(data, size);
  fuzz::write_input("model.safetensors", file.data(), file.size());
  try {
    const SafetensorsCheckpoint ck(fuzz::scratch_dir());
    float buf[64];
    for (const auto& [name, t] : ck.tensors()) {
      if (ck.find(name) != &t) std::abort();
      const int64_t n = t.numel();
      const int64_t elem = t.dtype == SafeDType::F32 ? 4 : 2;
      if (static_cast<uint64_t>(n * elem) != t.size) std::abort();  // the size check let a mismatch through
      // The first and the last elements (ASan does not see into the mapping, so this
      // checks the arithmetic: size agrees with the shape, data lies in the file).
      const int64_t k = std::min<int64_t>(n, 64);
      if (k > 0) {
        t.read_f32(0, k, buf);
        t.read_f32(n - k, k, buf);
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
