// libFuzzer target: a Hugging Face config.json (convert/hf_config.h) to hyper-parameters,
// then the tensor set they imply (include/qrun/model_layout.h). The input is config.json.
#include "convert/hf_config.h"
#include "fuzz/fuzz_util.h"
#include "qrun/model_layout.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qrun;
  fuzz::write_input("config.json", data, size);
  try {
    const format::HParams hp = read_hf_config(fuzz::scratch_dir());
    // Accepted hyper-parameters pass the reader's own check, and give a tensor set.
    validate_hparams(hp, "config.json", -1);
    const auto specs = expected_tensors(hp);
    if (specs.empty()) std::abort();
    for (const auto& s : specs)
      if (s.cols <= 0 || s.rows <= 0) std::abort();
  } catch (const Error&) {
  }
  return 0;
}
