// libFuzzer target: a GGUF file (convert/gguf_reader.h) parsed from memory with every
// count, length, offset and extent checked; when it parses, every tensor's first and
// last row is read and dequantized where the type allows (ASan sees the input buffer,
// so a tensor extent the checks got wrong is an out-of-bounds read), numeric arrays are
// decoded, and the tokenizer rebuilt from tokenizer.ggml.* is run
// (fuzz/fuzz_util.h: exercise_tokenizer). Seeds: llama.cpp's vocab-only GGUF files.
#include <algorithm>
#include <vector>

#include "convert/gguf_quants.h"
#include "convert/gguf_reader.h"
#include "convert/gguf_tokenizer.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qrun;
  // A heap copy of exactly `size` bytes, so ASan flags a read one byte past the end.
  const std::vector<uint8_t> bytes(data, data + size);
  try {
    const GgufFile g(bytes.data(), bytes.size(), "fuzz.gguf");
    std::vector<float> row;
    for (const GgufTensorInfo& t : g.tensors()) {
      if (t.offset < g.data_offset() || t.offset + t.size > bytes.size()) std::abort();
      int64_t be, bb;
      if (!ggml_type_geometry(t.type, &be, &bb)) std::abort();
      const int64_t row_bytes = t.ne[0] / be * bb;
      if (static_cast<uint64_t>(row_bytes * t.n_rows()) != t.size) std::abort();
      if (!gguf_can_dequantize(t.type) || t.ne[0] > (1 << 16)) continue;
      row.resize(static_cast<size_t>(t.ne[0]));
      gguf_dequantize_row(t.type, g.tensor_data(t), t.ne[0], row.data());
      gguf_dequantize_row(t.type, g.tensor_data(t) + (t.n_rows() - 1) * row_bytes, t.ne[0], row.data());
    }
    for (const GgufKV& kv : g.kvs()) {
      if (kv.type != GgufValueType::Array) continue;
      if (kv.elem_type == GgufValueType::String) continue;
      try {
        g.get_float_array(kv.key);
      } catch (const Error&) {
      }
    }
    fuzz::exercise_tokenizer(tokenizer_from_gguf(g));
  } catch (const Error&) {
  }
  return 0;
}
