// The generation loop: the prompt in batches (reusing whatever prefix of it the KV cache
// already holds), then one token at a time until EOS, the token budget or the caller
// stops it; a full context is shifted (llama.cpp's context shift) unless told not to.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <span>

#include "qrun/grammar_constraint.h"
#include "qrun/model.h"
#include "qrun/sampler.h"

namespace qrun {

// Speculative decoding (llama.cpp's --model-draft): a smaller model with the same
// vocabulary guesses up to `max` tokens greedily, stopping where its own top probability
// falls below `p_min`; the model runs the last sampled token and the guesses as one batch
// and samples each row in turn, keeping the guesses its samples agree with. Every output
// token is still sampled once, from the model's own logits, so the output is what the
// same sampler and seed give without a draft wherever a batch of steps gives the logits
// single steps give (Model::steps: qrun's kernels; not float weights on OpenBLAS); it
// costs fewer passes over the weights when the guesses are good.
struct DraftOptions {
  Model* model = nullptr;  // none: no speculation
  int max = 16;
  float p_min = 0.75f;
};

struct GenerateOptions {
  int n_predict = 128;        // < 0: until EOS (or, without context shift, a full context)
  bool ignore_eos = false;
  bool context_shift = true;  // on a full context drop half of the tokens after n_keep; else stop
  int n_keep = 0;             // prompt tokens a context shift keeps, not counting BOS (always kept)
  // When set (and reset() by the caller), every sampled token keeps the reply a prefix of
  // what the constraint asks for (a JSON object, a schema's JSON, a GBNF grammar's text),
  // and generation stops when nothing more can follow.
  GrammarConstraint* constraint = nullptr;
  // When set, called with each token about to go to on_token and the logits it was
  // sampled from, as the model gave them (before penalties, temperature and the
  // constraint's mask): where OpenAI's logprobs are read.
  std::function<void(int32_t token, std::span<const float> logits)> on_logits = {};
  DraftOptions draft;
};

enum class StopReason {
  EndOfSequence,  // EOS or end-of-turn token (not passed to on_token)
  TokenLimit,     // n_predict tokens generated
  Caller,         // on_token returned false
  ContextFull,    // context full and context_shift off
  Complete,       // GenerateOptions::constraint's text is whole and nothing can follow
};

struct GenerationStats {
  int prompt_tokens = 0;     // prompt tokens evaluated
  int reused_tokens = 0;     // prompt tokens already in the KV cache, not evaluated
  double prompt_ms = 0;
  int generated_tokens = 0;  // tokens sampled
  int eval_tokens = 0;       // of those, tokens run through the model
  int drafted_tokens = 0;    // a draft model's guesses run through the model
  int accepted_tokens = 0;   // guesses the samples agreed with
  double eval_ms = 0;
  int context_shifts = 0;
  StopReason stop = StopReason::TokenLimit;
  // The last token given to on_token when generation stopped before running it through
  // the model; -1 when none. A conversation that continues feeds it first.
  int32_t pending_token = -1;

  void add(const GenerationStats& o);  // sums, for the timings of a whole conversation
};

// Makes room for `needed` more tokens in a full context by context shifts (drops half of
// the tokens after BOS + n_keep each time); returns how many shifts it took. Throws when
// the tokens after the kept ones cannot make enough room.
int make_room(Model& model, int needed, int n_keep);

// Throws qrun::Error naming the draft's file unless its vocabulary is the model's (the
// same size and the same pieces): its guesses are token ids of the model's.
void check_draft_vocabulary(const Tokenizer& model, const Tokenizer& draft, const std::string& draft_path);

// How a draft runs beside a model loaded with `options` whose context is `model_context`:
// the model's threads and prefetch, a context as long as the model's, the rest the defaults.
RuntimeOptions draft_runtime_options(int model_context, const RuntimeOptions& options);

// Runs the prompt, reusing the longest prefix of it the KV cache already holds
// (model.tokens()), then samples. on_token is called with each sampled token that is not
// EOS; returning false stops generation. A prompt longer than the context is an error.
GenerationStats generate(Model& model, std::span<const int32_t> prompt, Sampler& sampler,
                         const GenerateOptions& options, const std::function<bool(int32_t)>& on_token);

}  // namespace qrun
