// libFuzzer target: a Hugging Face tokenizer.json (src/tokenizer/tokenizer_hf.cpp) loaded, then
// encoding and decoding (fuzz/fuzz_util.h: exercise_tokenizer). The input is
// tokenizer.json, alone in its folder.
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qrun;
  static const auto dir = [] {
    auto d = fuzz::scratch_dir() / "tokenizer_json";
    std::filesystem::create_directories(d);
    return d;
  }();
  fuzz::write_input("tokenizer_json/tokenizer.json", data, size);
  try {
    fuzz::exercise_tokenizer(load_hf_tokenizer(dir));
  } catch (const Error&) {
  }
  return 0;
}
