#include "qrun/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <vector>

#include "qrun/error.h"
#include "simd/kernels.h"

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

// Brings the draft's cache to `seen` (keeping the prefix it holds) and leaves the logits
// after it; false when the draft's context cannot hold `extra` more.
bool sync_draft(Model& draft, std::span<const int32_t> seen, int extra, std::vector<float>& logits) {
  if (static_cast<int>(seen.size()) + extra > draft.context_length()) return false;
  const auto cached = draft.tokens();
  const size_t common = std::mismatch(cached.begin(), cached.end(), seen.begin(), seen.end()).first - cached.begin();
  draft.truncate(static_cast<int>(std::min(common, seen.size() - 1)));
  logits.resize(draft.hparams().vocab_size);
  draft.forward(seen.subspan(static_cast<size_t>(draft.position())), logits.data());
  return true;
}

// How many of k guesses go into the model's batch with the sampled token: batches of a
// multiple of the kernels' tile cost least per token (on a 2-core Zen 5, tinyllama q4:
// 1, 2, 3, 4, 8 tokens in 9.6, 14, 22.5, 19.4, 37 ms), so 4 guesses become 3 and 2 one.
int usable_guesses(int k) {
  if (k < kTileTokens - 1) return std::min(k, 1);
  return (k + 1) / kTileTokens * kTileTokens - 1;
}

// The draft's greedy guesses after `seen`, up to `max`, while its top probability is at
// least p_min (and not at an end of sequence).
std::vector<int32_t> draft_guesses(Model& draft, std::span<const int32_t> seen, int max, float p_min,
                                   std::vector<float>& logits) {
  std::vector<int32_t> guesses;
  max = usable_guesses(max);  // no guess made only to be dropped
  if (max <= 0 || !sync_draft(draft, seen, max, logits)) return guesses;
  const size_t words = std::min<size_t>(logits.size(), static_cast<size_t>(draft.tokenizer().vocab_size()));
  while (true) {
    const auto best = std::max_element(logits.begin(), logits.begin() + static_cast<std::ptrdiff_t>(words));
    double sum = 0;
    for (size_t i = 0; i < words; ++i) sum += std::exp(static_cast<double>(logits[i]) - *best);
    if (1.0 / sum < p_min || draft.tokenizer().is_eos(static_cast<int32_t>(best - logits.begin()))) break;
    guesses.push_back(static_cast<int32_t>(best - logits.begin()));
    if (static_cast<int>(guesses.size()) == max) break;
    draft.step(guesses.back(), logits.data());
  }
  guesses.resize(static_cast<size_t>(usable_guesses(static_cast<int>(guesses.size()))));
  return guesses;
}

// Logits the model has computed beyond the token being sampled: the draft's guesses ran
// in one batch with it, and row i is what follows guess i - 1 (row 0 the sampled token).
struct Lookahead {
  std::vector<int32_t> guesses;
  std::vector<float> rows;
  size_t at = 0;  // the row sampled last: guesses from `at` on are not confirmed yet
  int unconfirmed() const { return static_cast<int>(guesses.size() - at); }
};

}  // namespace

RuntimeOptions draft_runtime_options(int model_context, const RuntimeOptions& options) {
  RuntimeOptions draft;
  draft.threads = options.threads;
  draft.prefetch = options.prefetch;
  draft.context = model_context;
  return draft;
}

void check_draft_vocabulary(const Tokenizer& a, const Tokenizer& b, const std::string& draft_path) {
  bool same = a.vocab_size() == b.vocab_size();
  for (int32_t id = 0; same && id < a.vocab_size(); ++id) same = a.piece(id) == b.piece(id);
  if (!same)
    throw Error(draft_path, -1,
                "the draft model's vocabulary (" + std::to_string(b.vocab_size()) + " tokens) is not the model's (" +
                    std::to_string(a.vocab_size()) + "): speculative decoding needs the same tokens");
}

void GenerationStats::add(const GenerationStats& o) {
  prompt_tokens += o.prompt_tokens;
  reused_tokens += o.reused_tokens;
  prompt_ms += o.prompt_ms;
  generated_tokens += o.generated_tokens;
  eval_tokens += o.eval_tokens;
  eval_ms += o.eval_ms;
  context_shifts += o.context_shifts;
  drafted_tokens += o.drafted_tokens;
  accepted_tokens += o.accepted_tokens;
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
  std::vector<float> draft_logits;
  if (options.draft.model) sync_draft(*options.draft.model, prompt, 1, draft_logits);  // the draft reads the prompt too
  st.reused_tokens = kept;
  st.prompt_tokens = static_cast<int>(prompt.size()) - kept;
  st.prompt_ms = ms_since(t0);

  // Guesses the samples did not confirm leave the cache, which then holds the history.
  Lookahead ahead;
  const auto drop_unconfirmed = [&] {
    if (ahead.unconfirmed() > 0) {
      const auto cached = model.tokens();
      const std::vector<int32_t> kept(cached.begin(), cached.end() - ahead.unconfirmed());
      model.truncate(static_cast<int>(kept.size()));
      if (model.position() < static_cast<int>(kept.size()))  // a sliding window's ring kept less: run them again
        model.forward(std::span(kept).subspan(static_cast<size_t>(model.position())), nullptr);
    }
    ahead.guesses.clear();  // (the rows keep their memory for the next pass)
    ahead.at = 0;
  };

  // Runs `next` through the model: alone, or with the draft's guesses after it.
  const auto evaluate = [&](int32_t next) {
    // Guesses fit the context, and past the last token asked for none is needed.
    int room = model.context_length() - model.position() - 1;
    if (options.n_predict >= 0) room = std::min(room, options.n_predict - st.generated_tokens - 1);
    if (options.draft.model && room > 0) {  // the draft reads what the model's cache holds (after any shift)
      std::vector<int32_t> seen(model.tokens().begin(), model.tokens().end());
      seen.push_back(next);
      ahead.guesses = draft_guesses(*options.draft.model, seen, std::min(options.draft.max, room), options.draft.p_min,
                                    draft_logits);
    }
    if (ahead.guesses.empty()) {
      model.step(next, logits.data());
      return;
    }
    std::vector<int32_t> batch{next};
    batch.insert(batch.end(), ahead.guesses.begin(), ahead.guesses.end());
    ahead.rows.resize(batch.size() * logits.size());
    model.steps(batch, ahead.rows.data());
    std::copy_n(ahead.rows.begin(), logits.size(), logits.begin());
    st.drafted_tokens += static_cast<int>(ahead.guesses.size());
  };

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
    if (ahead.at < ahead.guesses.size() && ahead.guesses[ahead.at] == next) {  // in the cache, its logits made
      ++ahead.at;
      std::copy_n(ahead.rows.begin() + static_cast<std::ptrdiff_t>(ahead.at * logits.size()), logits.size(), logits.begin());
      ++st.accepted_tokens;
      st.pending_token = -1;
      ++st.eval_tokens;
      continue;
    }
    drop_unconfirmed();
    if (model.position() >= model.context_length()) {
      if (!options.context_shift) {
        st.stop = StopReason::ContextFull;
        break;
      }
      st.context_shifts += make_room(model, 1, options.n_keep);
    }
    evaluate(next);
    st.pending_token = -1;
    ++st.eval_tokens;
  }
  drop_unconfirmed();
  st.eval_ms = ms_since(t0);
  return st;
}

}  // namespace qrun
