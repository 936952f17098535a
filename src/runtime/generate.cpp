#include "qrun/generate.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <vector>

#include "qrun/error.h"

namespace qrun {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// BOS is kept whatever n_keep says: the model never saw a sequence without it.
int kept_tokens(const Model& model, int n_keep) {
  const auto cached = model.tokens();
  const int bos = !cached.empty() && cached[0] == model.tokenizer().bos_id() ? 1 : 0;
  return std::min(bos + std::max(n_keep, 0), model.position());
}

// Samples as if unconstrained and keeps the token when the object allows it, so the
// constraint costs one check per token while the model writes JSON of its own accord.
// Otherwise every refused token is masked and the sampler draws again from the same
// logits (penalties apply to the masked copy as to the first).
int32_t sample_constrained(Sampler& sampler, std::vector<float>& logits, std::span<const int32_t> history,
                    const GrammarConstraint& json, std::vector<float>& scratch) {
  scratch = logits;
  const int32_t first = sampler.sample(scratch, history);
  if (json.allows(first)) return first;
  if (json.mask(logits) == 0) throw Error("constraint: no token of the vocabulary can continue the reply");
  const int32_t next = sampler.sample(logits, history);
  return json.allows(next) ? next : argmax(logits);  // a rounding edge of the sampler's last draw
}
}  // namespace

void GenerationStats::add(const GenerationStats& o) {
  prompt_tokens += o.prompt_tokens;
  reused_tokens += o.reused_tokens;
  prompt_ms += o.prompt_ms;
  generated_tokens += o.generated_tokens;
  eval_tokens += o.eval_tokens;
  eval_ms += o.eval_ms;
  context_shifts += o.context_shifts;
  stop = o.stop;
  pending_token = o.pending_token;
}

int make_room(Model& model, int needed, int n_keep) {
  int shifts = 0;
  while (model.position() + needed > model.context_length()) {
    const int keep = kept_tokens(model, n_keep);
    const int discard = std::min(model.position() - keep, std::max(1, (model.position() - keep) / 2));
    if (discard <= 0 || needed > model.context_length() - keep)
      throw Error("context shift: " + std::to_string(needed) + " new tokens do not fit a context of " +
                  std::to_string(model.context_length()) + " with " + std::to_string(keep) +
                  " tokens kept (raise -c or lower --keep)");
    model.shift_context(keep, discard);
    ++shifts;
  }
  return shifts;
}

GenerationStats generate(Model& model, std::span<const int32_t> prompt, Sampler& sampler,
                         const GenerateOptions& options, const std::function<bool(int32_t)>& on_token) {
  if (prompt.empty()) throw Error("empty prompt");
  if (static_cast<int>(prompt.size()) > model.context_length())
    throw Error("prompt is " + std::to_string(prompt.size()) + " tokens, longer than the context of " +
                std::to_string(model.context_length()) + " (raise -c)");
  const int vocab = static_cast<int>(model.hparams().vocab_size);
  std::vector<float> logits(static_cast<size_t>(vocab));
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  std::vector<float> scratch, raw;  // raw: the logits before sampling changes them (on_logits)
  GenerationStats st;

  // The cached prefix is reused; the last prompt token always runs, for its logits.
  const auto cached = model.tokens();
  const size_t common = std::mismatch(cached.begin(), cached.end(), prompt.begin(), prompt.end()).first - cached.begin();
  const int reuse = static_cast<int>(std::min(common, prompt.size() - 1));
  model.truncate(reuse);
  const int kept = model.position();  // a sliding window's ring may keep less
  auto t0 = std::chrono::steady_clock::now();
  model.forward(prompt.subspan(static_cast<size_t>(kept)), logits.data());
  st.reused_tokens = kept;
  st.prompt_tokens = static_cast<int>(prompt.size()) - kept;
  st.prompt_ms = ms_since(t0);

  t0 = std::chrono::steady_clock::now();
  while (true) {
    if (options.n_predict >= 0 && st.generated_tokens >= options.n_predict) {
      st.stop = StopReason::TokenLimit;
      break;
    }
    // Rows past the tokenizer's ids (Gemma 3 4B's head has 64 more than its 262,144
    // tokens) have no text: never sample them.
    std::fill(logits.begin() + std::min(model.tokenizer().vocab_size(), vocab), logits.end(),
              -std::numeric_limits<float>::infinity());
    if (options.on_logits) raw = logits;
    const int32_t next = options.constraint ? sample_constrained(sampler, logits, history, *options.constraint, scratch)
                                      : sampler.sample(logits, history);
    ++st.generated_tokens;
    history.push_back(next);
    if (!options.ignore_eos && model.tokenizer().is_eos(next)) {
      st.stop = StopReason::EndOfSequence;
      break;
    }
    st.pending_token = next;
    if (options.constraint) options.constraint->accept(next);
    if (options.on_logits) options.on_logits(next, raw);
    if (!on_token(next)) {
      st.stop = StopReason::Caller;
      break;
    }
    if (options.constraint && options.constraint->complete()) {
      st.stop = StopReason::Complete;
      break;
    }
    if (options.n_predict >= 0 && st.generated_tokens >= options.n_predict) {
      st.stop = StopReason::TokenLimit;
      break;
    }
    if (model.position() >= model.context_length()) {
      if (!options.context_shift) {
        st.stop = StopReason::ContextFull;
        break;
      }
      st.context_shifts += make_room(model, 1, options.n_keep);
    }
    model.step(next, logits.data());
    st.pending_token = -1;
    ++st.eval_tokens;
  }
  st.eval_ms = ms_since(t0);
  return st;
}

}  // namespace qrun
