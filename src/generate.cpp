#include "qrun/generate.h"

#include <chrono>
#include <vector>

#include "qrun/error.h"

namespace qrun {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GenerationStats generate(Model& model, std::span<const int32_t> prompt, Sampler& sampler,
                         const GenerateOptions& options, const std::function<bool(int32_t)>& on_token) {
  if (prompt.empty()) throw Error("empty prompt");
  const int vocab = static_cast<int>(model.hparams().vocab_size);
  std::vector<float> logits(static_cast<size_t>(vocab));
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  GenerationStats st;

  auto t0 = std::chrono::steady_clock::now();
  model.forward(prompt, logits.data());
  st.prompt_tokens = static_cast<int>(prompt.size());
  st.prompt_ms = ms_since(t0);

  const int budget = options.n_predict < 0 ? model.context_length() : options.n_predict;
  t0 = std::chrono::steady_clock::now();
  while (st.generated_tokens < budget) {
    const int32_t next = sampler.sample(logits, history);
    ++st.generated_tokens;
    history.push_back(next);
    if (!options.ignore_eos && model.tokenizer().is_eos(next)) break;
    if (!on_token(next)) break;
    if (st.generated_tokens == budget || model.position() >= model.context_length()) break;
    model.forward(std::span<const int32_t>(&next, 1), logits.data());
    ++st.eval_tokens;
  }
  st.eval_ms = ms_since(t0);
  return st;
}

}  // namespace qrun
