#include "convert/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "qrun/error.h"
#include "quant/quantize.h"

namespace qrun {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s;
  for (int64_t d : shape) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return "[" + s + "]";
}

int64_t SafeTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      throw Error(file, -1, "tensor '" + name + "': shape does not give an element count that fits in 64 bits");
  return n;
}

namespace {

// E2M1 codes: sign bit, 2 exponent bits, 1 mantissa bit.
constexpr float kE2M1[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                             -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

}  // namespace

void SafeTensor::read_f32(int64_t begin, int64_t n, float* out) const {
  switch (dtype) {
    case SafeDType::U8:
      throw Error(file, -1, "tensor '" + name + "' holds raw bytes (U8) without an MXFP4 _blocks/_scales partner");
    case SafeDType::MXFP4:
      for (int64_t i = 0; i < n; ++i) {
        const int64_t at = begin + i;
        const uint8_t byte = data[at / 2];
        const int exponent = static_cast<int>(scales[at / 32]) - 127;
        out[i] = std::ldexp(kE2M1[at % 2 ? byte >> 4 : byte & 15], exponent);
      }
      return;
    case SafeDType::F32:
      std::memcpy(out, data + begin * 4, static_cast<size_t>(n) * 4);
      return;
    case SafeDType::F16:
    case SafeDType::BF16: {
      const uint8_t* p = data + begin * 2;
      for (int64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        out[i] = dtype == SafeDType::F16 ? f16_to_f32(v) : bf16_to_f32(v);
      }
      return;
    }
  }
}

SafetensorsCheckpoint::SafetensorsCheckpoint(const fs::path& dir) {
  const fs::path single = dir / "model.safetensors";
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::is_regular_file(dir)) {
    add_file(dir);
  } else if (fs::exists(index)) {
    std::ifstream in(index);
    json j;
    try {
      j = json::parse(in);
    } catch (const json::exception& e) {
      throw Error(index.string(), -1, std::string("malformed JSON: ") + e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      throw Error(index.string(), -1, "no \"weight_map\" object");
    std::set<std::string> shards;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) throw Error(index.string(), -1, "weight_map entry '" + name + "' is not a file name");
      const std::string f = file.get<std::string>();
      if (f.find('/') != std::string::npos) throw Error(index.string(), -1, "shard name '" + f + "' has a path");
      shards.insert(f);
    }
    for (const auto& s : shards) add_file(dir / s);
    for (const auto& [name, file] : j["weight_map"].items())
      if (!tensors_.count(name))
        throw Error(index.string(), -1, "tensor '" + name + "' is not in shard " + file.get<std::string>());
  } else if (fs::exists(single)) {
    add_file(single);
  } else {
    throw Error(dir.string(), -1, "no model.safetensors or model.safetensors.index.json");
  }
  pair_mxfp4_tensors();
}

void SafetensorsCheckpoint::pair_mxfp4_tensors() {
  std::vector<std::string> blocks;
  for (const auto& [name, t] : tensors_)
    if (t.dtype == SafeDType::U8 && name.ends_with("_blocks")) blocks.push_back(name);
  for (const std::string& name : blocks) {
    const std::string base = name.substr(0, name.size() - 7);
    const SafeTensor& b = tensors_.at(name);
    const auto sc = tensors_.find(base + "_scales");
    const std::string what = "MXFP4 tensor '" + base + "': ";
    if (sc == tensors_.end() || sc->second.dtype != SafeDType::U8)
      throw Error(b.file, -1, what + "has _blocks but no U8 _scales");
    const SafeTensor& s = sc->second;
    std::vector<int64_t> want(b.shape.begin(), b.shape.end() - (b.shape.empty() ? 0 : 1));
    if (b.shape.size() < 2 || b.shape.back() != 16 || s.shape != want)
      throw Error(b.file, -1, what + "_blocks must be [..., groups, 16] and _scales [..., groups]");
    if (tensors_.count(base)) throw Error(b.file, -1, what + "also stored unpacked");
    SafeTensor t = b;
    t.name = base;
    t.dtype = SafeDType::MXFP4;
    t.shape = want;
    t.shape.back() *= 32;
    t.scales = s.data;
    tensors_.erase(base + "_scales");
    tensors_.erase(name);
    tensors_.emplace(base, std::move(t));
  }
}

void SafetensorsCheckpoint::add_file(const fs::path& path) {
  auto file = std::make_unique<MappedFile>(path.string(), LoadMode::Mmap);
  const std::string fname = path.string();
  const uint64_t size = file->size();
  if (size < 8) throw Error(fname, 0, "too small for a safetensors header");
  uint64_t header_len;
  std::memcpy(&header_len, file->data(), 8);
  if (header_len > size - 8 || header_len > (100ull << 20))
    throw Error(fname, 0, "header length " + std::to_string(header_len) + " exceeds the file");
  json j;
  try {
    j = json::parse(file->data() + 8, file->data() + 8 + header_len);
  } catch (const json::exception& e) {
    throw Error(fname, 8, std::string("malformed safetensors header JSON: ") + e.what());
  }
  if (!j.is_object()) throw Error(fname, 8, "safetensors header is not a JSON object");
  const uint64_t data_begin = 8 + header_len;
  const uint64_t data_size = size - data_begin;
  struct Range {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;
  for (const auto& [name, info] : j.items()) {
    if (name == "__metadata__") continue;
    const std::string what = "tensor '" + name + "': ";
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
      throw Error(fname, 8, what + "entry lacks dtype, shape or data_offsets");
    const auto& dt = info["dtype"];
    if (!dt.is_string()) throw Error(fname, 8, what + "dtype is not a string");
    SafeTensor t;
    t.name = name;
    t.file = fname;
    const std::string d = dt.get<std::string>();
    uint64_t elem = 0;
    if (d == "F32") t.dtype = SafeDType::F32, elem = 4;
    else if (d == "F16") t.dtype = SafeDType::F16, elem = 2;
    else if (d == "BF16") t.dtype = SafeDType::BF16, elem = 2;
    else if (d == "U8") t.dtype = SafeDType::U8, elem = 1;
    else throw Error(fname, 8, what + "unsupported dtype " + d + " (supported: F32, F16, BF16, U8 in MXFP4 pairs)");
    const auto& sh = info["shape"];
    const auto& off = info["data_offsets"];
    if (!sh.is_array() || sh.size() > 4) throw Error(fname, 8, what + "bad shape");
    uint64_t numel = 1;
    for (const auto& v : sh) {
      if (!v.is_number_unsigned() || v.get<uint64_t>() > (1ull << 32)) throw Error(fname, 8, what + "bad shape");
      // Checked: [2^32, 2^32] would wrap to 0 elements and pass the size check below.
      if (__builtin_mul_overflow(numel, v.get<uint64_t>(), &numel) || numel > (1ull << 40))
        throw Error(fname, 8, what + "shape " + sh.dump() + " has more than 2^40 elements");
      t.shape.push_back(v.get<int64_t>());
    }
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw Error(fname, 8, what + "bad data_offsets");
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > data_size)
      throw Error(fname, static_cast<int64_t>(data_begin + b),
                  what + "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + ") lie outside the file's " +
                      std::to_string(data_size) + " data bytes");
    if (e - b != numel * elem)
      throw Error(fname, static_cast<int64_t>(data_begin + b),
                  what + "data size " + std::to_string(e - b) + " does not match shape (" + std::to_string(numel * elem) +
                      " bytes)");
    t.data = file->data() + data_begin + b;
    t.size = e - b;
    auto [it, added] = tensors_.emplace(name, std::move(t));
    if (!added) throw Error(fname, 8, what + "appears in more than one shard");
    if (e > b) ranges.push_back({b, e, &it->first});
  }
  // Two tensors sharing bytes would each be read as the other's data.
  std::sort(ranges.begin(), ranges.end(), [](const Range& x, const Range& y) { return x.begin < y.begin; });
  const Range* reach = nullptr;  // the range, among those before, that ends last
  for (const Range& r : ranges) {
    if (reach && r.begin < reach->end)
      throw Error(fname, static_cast<int64_t>(data_begin + r.begin),
                  "tensors '" + *reach->name + "' (data_offsets [" + std::to_string(reach->begin) + ", " +
                      std::to_string(reach->end) + ")) and '" + *r.name + "' ([" + std::to_string(r.begin) + ", " +
                      std::to_string(r.end) + ")) overlap");
    if (!reach || r.end > reach->end) reach = &r;
  }
  files_.push_back(std::move(file));
}

const SafeTensor* SafetensorsCheckpoint::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

}  // namespace qrun
