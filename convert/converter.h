// qconvert's work as a library call: HF folder -> one qrun model file.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "convert/calibration.h"
#include "convert/lora_adapter.h"
#include "convert/model_writer.h"
#include "quant/type_policy.h"
#include "qrun/dtype.h"

namespace qrun {

struct ConvertOptions {
  DType weight_type = DType::Q4;   // the big matrices' type (docs/format.md: converter policy)
  bool mixed = false;              // a preset (q4m...): some tensors get more bits (quant/type_policy.h)
  std::vector<std::string> tensor_types;  // PATTERN=TYPE overrides (qconvert --tensor-type)
  int threads = 1;
  std::function<void(const WriteProgress&)> progress;
  // qconvert --calibrate: weight each matrix's quantization error by the mean square of
  // its inputs on this text (convert/calibration.h). For GGUF input, only the tensors
  // re-quantized (blocks carried as they are keep their error).
  CalibrationOptions calibration;
  // qconvert --lora / --lora-scaled: PEFT adapters merged into the weights, in order
  // (convert/lora_adapter.h); calibration runs the merged model too.
  std::vector<LoraOption> lora;
};

WriteSummary convert_hf_checkpoint(const std::string& hf_dir, const std::string& out_path,
                                   const ConvertOptions& options);

// The Hugging Face name of a qrun tensor ("layers.3.wq" -> "model.layers.3.self_attn.q_proj.weight"),
// from the architecture's table (src/format/arch_table.h).
std::string hf_tensor_name(const std::string& qrun_name, uint32_t arch = 1);

// The type policy the options describe (quant/type_policy.h): their weight type,
// preset and --tensor-type rules (parsed here, once per conversion).
TypePolicy type_policy(const ConvertOptions& options);

}  // namespace qrun
