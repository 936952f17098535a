// The smallest program on the qrun library: load a model file, encode a prompt,
// sample a continuation and stream it as UTF-8.
//
//   example_generate MODEL "PROMPT" [N_TOKENS]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "qrun/error.h"
#include "qrun/generate.h"
#include "qrun/model.h"
#include "qrun/sampler.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL PROMPT [N_TOKENS]\n", argv[0]);
    return 2;
  }
  try {
    qrun::Model model(argv[1], qrun::RuntimeOptions{});
    const std::vector<int32_t> prompt = model.tokenizer().encode(argv[2], /*add_special=*/true,
                                                                 /*parse_special=*/false);
    qrun::SamplerConfig sampling;
    sampling.seed = 42;
    qrun::Sampler sampler(sampling);
    qrun::GenerateOptions options;
    options.n_predict = argc > 3 ? std::atoi(argv[3]) : 64;

    qrun::StreamingDecoder decoder(model.tokenizer(), /*at_text_start=*/false);
    std::fputs(argv[2], stdout);
    const qrun::GenerationStats stats = qrun::generate(model, prompt, sampler, options, [&](int32_t id) {
      std::fputs(decoder.push(id).c_str(), stdout);
      std::fflush(stdout);
      return true;
    });
    std::printf("%s\n", decoder.flush().c_str());
    std::fflush(stdout);
    std::fprintf(stderr, "%d tokens at %.1f tokens/s\n", stats.generated_tokens,
                 stats.eval_ms > 0 ? 1000.0 * stats.eval_tokens / stats.eval_ms : 0.0);
  } catch (const qrun::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
