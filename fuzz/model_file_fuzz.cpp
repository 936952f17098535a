// libFuzzer target: a qrun model file (docs/format.md) through ModelFile's validation,
// checksum verification and the tokenizer blob it carries.
//
// The input is a model file. So that mutations get past the size and checksum checks
// and reach the tensor table, layer ranges and tokenizer, the harness fixes the file up
// before writing it:
//   - a file shorter than its header's file_size (at most 16 MiB) is padded with zeros
//     up to it, so seeds can be the metadata alone (bytes [0, data_offset));
//     otherwise file_size is set to the real size;
//   - each tensor entry's XXH3 checksum is recomputed over its bytes when they lie in
//     the file, then meta_checksum over [128, data_offset).
// Bit 0 of the header's first reserved byte picks the load mode (mmap or private copy).
#include <xxhash.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "qrun/format.h"
#include "qrun/model_file.h"
#include "qrun/tokenizer.h"

namespace {

using namespace qrun;

constexpr uint64_t kMaxPaddedSize = 16u << 20;

bool fits(uint64_t offset, uint64_t size, uint64_t limit) { return offset <= limit && size <= limit - offset; }

std::vector<uint8_t> fix_up(const uint8_t* data, size_t size) {
  std::vector<uint8_t> f(data, data + size);
  if (size < sizeof(format::FileHeader)) return f;
  format::FileHeader h;
  std::memcpy(&h, f.data(), sizeof h);
  if (h.file_size > f.size() && h.file_size <= kMaxPaddedSize) f.resize(h.file_size, 0);
  h.file_size = f.size();
  if (h.n_tensors <= format::kMaxTensors &&
      fits(h.tensors_offset, uint64_t{h.n_tensors} * sizeof(format::TensorEntry), f.size())) {
    for (uint32_t i = 0; i < h.n_tensors; ++i) {
      uint8_t* at = f.data() + h.tensors_offset + uint64_t{i} * sizeof(format::TensorEntry);
      format::TensorEntry e;
      std::memcpy(&e, at, sizeof e);
      if (!fits(e.offset, e.size, f.size())) continue;
      e.checksum = XXH3_64bits(f.data() + e.offset, e.size);
      std::memcpy(at, &e, sizeof e);
    }
  }
  if (h.data_offset >= sizeof(format::FileHeader) && h.data_offset <= f.size())
    h.meta_checksum = XXH3_64bits(f.data() + sizeof(format::FileHeader), h.data_offset - sizeof(format::FileHeader));
  std::memcpy(f.data(), &h, sizeof h);
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> file = fix_up(data, size);
  const LoadMode mode = size >= sizeof(format::FileHeader) && (data[offsetof(format::FileHeader, reserved)] & 1)
                            ? LoadMode::ReadPrivate
                            : LoadMode::Mmap;
  const auto path = fuzz::write_input("model.qrun", file.data(), file.size());
  try {
    const ModelFile mf(path.string(), mode);
    mf.verify_checksums();
    // Every byte the views promise must be readable (ASan checks the private copy).
    volatile uint8_t sink = 0;
    for (const TensorView& t : mf.tensors()) {
      if (t.size == 0 || t.data == nullptr) std::abort();
      sink = sink ^ t.data[0] ^ t.data[t.size - 1];
      if (t.row_bytes() * t.rows != static_cast<int64_t>(t.size)) std::abort();
      if (mf.find(t.name) != &t) std::abort();
    }
    for (const format::LayerRange& r : mf.layers())
      if (r.size) sink = sink ^ mf.mapping().data()[r.offset + r.size - 1];
    const auto blob = mf.tokenizer_blob();
    if (!blob.empty()) sink = sink ^ blob[0] ^ blob[blob.size() - 1];
    fuzz::exercise_tokenizer(deserialize_tokenizer(mf));
  } catch (const Error&) {
    // Refused with a message: what a hostile file should get.
  }
  return 0;
}
