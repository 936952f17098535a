// Writes a qrun model file (docs/format.md): lays out the sections, fills tensors in
// parallel, checksums everything, and publishes the file atomically (temp file in the
// output folder, fsync, rename), so a reader never sees a half-written model. The temp
// file has no name until it is complete (O_TMPFILE) where Linux allows, so a killed
// conversion leaves nothing; elsewhere a named one that the next conversion to the
// same destination removes. Space is reserved first: a full disk fails at once.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "qrun/dtype.h"
#include "qrun/format.h"

namespace qrun {

struct TensorToWrite {
  std::string name;
  DType dtype;
  int64_t cols;
  int64_t rows;
  int n_dims;
  int layer;   // -1 for global
  // Writes rows [row_begin, row_end) in `dtype` into out (row_end-row_begin rows of
  // dtype_row_bytes(dtype, cols)). Called from several threads on disjoint rows.
  std::function<void(int64_t row_begin, int64_t row_end, uint8_t* out)> fill;
};

struct WriteProgress {
  uint64_t bytes_done;
  uint64_t bytes_total;
  const std::string* tensor;
};

struct WriteOptions {
  int threads = 1;
  std::function<void(const WriteProgress&)> progress;   // may be empty
};

struct WriteSummary {
  uint64_t file_size = 0;
  uint64_t tensor_bytes = 0;
  uint64_t quantized_weights = 0;   // elements stored as Q8/Q4
  uint64_t quantized_bytes = 0;
};

// Tensors must come in file order (global before/after layers as expected_tensors says).
WriteSummary write_model_file(const std::string& out_path, const format::HParams& hp,
                              std::span<const uint8_t> tokenizer_blob,
                              const std::vector<TensorToWrite>& tensors, const WriteOptions& options);

// The named temp file currently being written (empty when none, as while it is an
// O_TMPFILE), so a signal handler can unlink it. Points to a NUL-terminated buffer
// that lives for the whole program.
const char* model_writer_temp_path();

}  // namespace qrun
