// libFuzzer target: a Hugging Face config.json (convert/hf_config.h) to hyper-parameters,
// then the tensor set they imply (include/qrun/model_layout.h). The input is config.json,
// then a sentence-transformers pooling file.
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
  // The same bytes as a sentence-transformers model's pooling files beside a valid
  // config.json: its Pooling module's config, then modules.json.
  static const std::string config = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
      "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 32})";
  fuzz::write_input("config.json", reinterpret_cast<const uint8_t*>(config.data()), config.size());
  std::filesystem::create_directories(fuzz::scratch_dir() / "1_Pooling");
  for (const char* name : {"1_Pooling/config.json", "modules.json"}) {
    fuzz::write_input(name, data, size);
    try {
      if (read_hf_config(fuzz::scratch_dir()).pooling > format::kMaxPooling) std::abort();
    } catch (const Error&) {
    }
  }
  std::filesystem::remove(fuzz::scratch_dir() / "modules.json");
  std::filesystem::remove(fuzz::scratch_dir() / "1_Pooling/config.json");
  return 0;
}
