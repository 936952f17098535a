// libFuzzer target: a SentencePiece tokenizer.model (protobuf, src/tokenizer/sentencepiece_model.cpp)
// read, then encoding and decoding (fuzz/fuzz_util.h: exercise_tokenizer). The input is
// tokenizer.model, alone in its folder, loaded as load_hf_tokenizer loads it.
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qrun;
  static const auto dir = [] {
    auto d = fuzz::scratch_dir() / "tokenizer_model";
    std::filesystem::create_directories(d);
    return d;
  }();
  fuzz::write_input("tokenizer_model/tokenizer.model", data, size);
  try {
    fuzz::exercise_tokenizer(load_hf_tokenizer(dir));
  } catch (const Error&) {
  }
  return 0;
}
