// libFuzzer target: the JSON files beside a tokenizer that set its special tokens and
// flags (src/tokenizer/tokenizer_hf.cpp): tokenizer_config.json (bos/eos/unk/pad, add_bos_token,
// chat_template), generation_config.json and config.json (eos_token_id). The first byte
// picks the file, the rest is its text; a small fixed tokenizer.json stands beside it.
// The tokenizer is then exercised as in tokenizer_json (fuzz/fuzz_util.h).
#include "fuzz/fuzz_util.h"

namespace {

// Seven pieces, three special, one merge: enough for every id the configs name.
constexpr char kTokenizerJson[] =
    R"({"added_tokens": [{"id": 0, "content": "<unk>", "special": true},)"
    R"( {"id": 1, "content": "<s>", "special": true}, {"id": 2, "content": "</s>", "special": true}],)"
    R"( "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": false},)"
    R"( "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}]},)"
    R"( "model": {"type": "BPE", "unk_token": "<unk>", "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2,)"
    R"( "\u2581": 3, "a": 4, "b": 5, "\u2581a": 6}, "merges": ["\u2581 a"]}})";

constexpr const char* kFiles[] = {"tokenizer_config.json", "generation_config.json", "config.json"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qrun;
  namespace fs = std::filesystem;
  static const fs::path dir = [] {
    const fs::path d = fuzz::scratch_dir() / "tokenizer_config";
    fs::create_directories(d);
    fuzz::write_input("tokenizer_config/tokenizer.json", reinterpret_cast<const uint8_t*>(kTokenizerJson),
                      sizeof(kTokenizerJson) - 1);
    (void)load_hf_tokenizer(d);  // the fixed tokenizer loads on its own (throws, and so fails, if not)
    return d;
  }();
  if (size == 0) return 0;
  const std::string file = kFiles[data[0] % std::size(kFiles)];
  for (const char* f : kFiles) fs::remove(dir / f);
  fuzz::write_input("tokenizer_config/" + file, data + 1, size - 1);
  try {
    fuzz::exercise_tokenizer(load_hf_tokenizer(dir));
  } catch (const Error&) {
  }
  return 0;
}
