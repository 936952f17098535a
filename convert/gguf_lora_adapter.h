// llama.cpp's LoRA adapter files (convert_lora_to_gguf.py): general.type "adapter",
// adapter.type "lora", adapter.lora.alpha, and per adapted weight NAME.lora_a (ne [in, r])
// and NAME.lora_b (ne [r, out]) in F32, F16, BF16 or Q8_0. Read as the PEFT reader's
// LoraDelta views (f32 where the file's type is not one a view can hold), the B rows of
// llama-arch Q/K weights put back in Hugging Face's order as the GGUF importer does.
#pragma once

#include <deque>
#include <set>
#include <string>
#include <vector>

#include "convert/gguf_reader.h"
#include "convert/lora_adapter.h"
#include "qrun/format.h"

namespace qrun {

class GgufLoraAdapter {
 public:
  GgufLoraAdapter(const LoraOption& option, const format::HParams& model);

  // The change to GGUF weight `gguf_name` ([rows, cols]; qrun's `qrun_name`), if any.
  std::vector<LoraDelta> deltas_for(const std::string& gguf_name, const std::string& qrun_name, int64_t rows,
                                    int64_t cols);
  // Throws naming the first lora_a / lora_b tensor no weight took.
  void check_all_used() const;

 private:
  const SafeTensor& view(const GgufTensorInfo& t, int64_t rows, int64_t cols, int64_t head_dim_permuted);

  GgufFile file_;
  float user_scale_, alpha_;
  bool permute_qk_;
  int64_t head_dim_;
  std::deque<std::vector<float>> owned_;  // factors converted to f32
  std::deque<SafeTensor> views_;
  std::set<std::string> used_;
};

}  // namespace qrun
