// Tokenizer encode throughput (MB/s of input text) on a long English text, for a
// SentencePiece vocabulary (llama2) and a byte-level one (llama3).
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include "qrun/tokenizer.h"

namespace {

const std::string& corpus() {
  static const std::string text = [] {
    std::ifstream in(QRUN_BENCH_SHARED_DIR "/corpus/tinyshakespeare.txt", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }();
  return text;
}

void encode(benchmark::State& state, const char* dir) {
  const qrun::Tokenizer tok(qrun::load_hf_tokenizer(std::string(QRUN_BENCH_SHARED_DIR) + "/" + dir));
  const std::string& text = corpus();
  size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tok.encode(text, false, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}

BENCHMARK_CAPTURE(encode, llama2_sentencepiece, "tokenizers/llama2")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(encode, llama3_byte_level, "tokenizers/llama3")->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
