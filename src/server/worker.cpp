#include "src/server/worker.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "qrun/embedding.h"
#include "qrun/error.h"
#include "qrun/generate.h"
#include "qrun/stop_strings.h"
#include "qrun/tokenizer.h"
#include "src/server/embedding_reply.h"
#include "src/server/json_text.h"
#include "src/server/line_channel.h"
#include "src/server/logprobs.h"

namespace qrun::server {

using nlohmann::json;

namespace {

Job job_from(const json& j) {
  Job job;
  job.id = j.at("id").get<uint64_t>();
  job.prompt = j.at("prompt").get<std::vector<int32_t>>();
  job.max_tokens = j.at("max_tokens").get<int>();
  job.sampling.temperature = j.at("temperature").get<float>();
  job.sampling.top_p = j.at("top_p").get<float>();
  job.sampling.top_k = j.at("top_k").get<int>();
  job.sampling.min_p = j.at("min_p").get<float>();
  job.sampling.repeat_penalty = j.at("repeat_penalty").get<float>();
  job.sampling.frequency_penalty = j.at("frequency_penalty").get<float>();
  job.sampling.presence_penalty = j.at("presence_penalty").get<float>();
  job.sampling.seed = j.at("seed").get<uint64_t>();
  for (const json& b : j.at("logit_bias"))  // [id, bias], a ban's bias null (JSON has no -inf)
    job.sampling.logit_bias.emplace_back(b.at(0).get<int32_t>(), b.at(1).is_null() ? -INFINITY : b.at(1).get<float>());
  job.ignore_eos = j.at("ignore_eos").get<bool>();
  job.stop = j.at("stop").get<std::vector<std::string>>();
  job.json_object = j.at("json_object").get<bool>();
  job.json_schema = j.at("json_schema").get<std::string>();
  job.grammar = j.at("grammar").get<std::string>();
  job.tagged_json = j.at("tagged_json").get<std::string>();
  job.kept_tokens = j.at("kept_tokens").get<std::vector<int32_t>>();
  job.logprobs = j.at("logprobs").get<int>();
  job.echo_from = j.at("echo_from").get<int>();
  job.pooling = j.at("pooling").get<int>();
  job.inputs = j.at("inputs").get<std::vector<std::vector<int32_t>>>();
  return job;
}

struct Fault {
  enum Kind { None, Abort, Stall } kind = None;
  int after = 0;
};

// QRUN_WORKER_FAULT=KIND:N:FLAG_FILE; the fault fires in the one worker that creates
// FLAG_FILE, so a restarted worker runs clean.
Fault fault_from_env() {
  const char* v = std::getenv("QRUN_WORKER_FAULT");
  Fault f;
  if (!v) return f;
  const std::string spec = v;
  const size_t a = spec.find(':'), b = spec.find(':', a == std::string::npos ? a : a + 1);
  if (a == std::string::npos || b == std::string::npos) return f;
  const std::string kind = spec.substr(0, a), flag = spec.substr(b + 1);
  const int fd = ::open(flag.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return f;
  ::close(fd);
  f.after = std::atoi(spec.substr(a + 1, b - a - 1).c_str());
  f.kind = kind == "abort" ? Fault::Abort : kind == "stall" ? Fault::Stall : Fault::None;
  return f;
}

// True when the front cancelled `id` (a cancel for an older job is stale and ignored).
bool cancelled(LineChannel& ch, uint64_t id, int timeout_ms) {
  std::string line;
  while (ch.read_line(line, timeout_ms) == LineChannel::Read::Line) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("type", "") == "cancel" && j.value("id", uint64_t{0}) == id) return true;
    timeout_ms = 0;
  }
  return false;
}

// The logprobs of prompt[from...]: the prompt runs from the start of the cache in
// chunks with every position's logits (generate() then finds it cached but for the last
// token); the first token has none.
json prompt_logprobs(Model& model, const std::vector<int32_t>& prompt, int from, int top) {
  constexpr size_t kChunk = 64;
  const size_t vocab = model.hparams().vocab_size;
  // Rows past the tokenizer's ids (Gemma 3 4B's head has 64 more) are no token's.
  const size_t tokens = std::min(vocab, static_cast<size_t>(model.tokenizer().vocab_size()));
  std::vector<float> logits(kChunk * vocab);
  json entries = json::array();
  model.truncate(0);
  for (size_t start = 0; start < prompt.size(); start += kChunk) {
    const size_t n = std::min(kChunk, prompt.size() - start);
    model.forward(std::span(prompt).subspan(start, n), logits.data(), true);
    for (size_t i = 0; i < n; ++i) {
      const size_t at = start + i;  // this row's logits are of the token at + 1
      if (at == 0 && from == 0) {
        json first = chat_logprob_entry(model.tokenizer(), {{prompt[0], 0}, {}});
        first["logprob"] = nullptr;
        first["top_logprobs"] = nullptr;
        entries.push_back(std::move(first));
      }
      if (at + 1 < prompt.size() && static_cast<int>(at + 1) >= from)
        entries.push_back(chat_logprob_entry(
            model.tokenizer(), sampled_logprobs(std::span<const float>(logits).subspan(i * vocab, tokens), prompt[at + 1], top)));
    }
  }
  // The echoed text begins without SentencePiece's space, as decoding writes it.
  if (!entries.empty() && model.tokenizer().strips_leading_space()) {
    json& first = entries[0];
    if (first["token"].get_ref<const std::string&>().starts_with(' ')) {
      first["token"] = first["token"].get<std::string>().substr(1);
      first["bytes"].erase(0);
    }
  }
  return entries;
}

// An embedding job's done line: the inputs' unit vectors in order; the cache then holds
// the last input. A cancel (the client went away) is heeded between inputs, as a
// completion heeds it between tokens, so the front need not kill a worker with a long list.
// (The test hook's stall counts inputs here.)
json embedding_done(Model& model, const Job& job, LineChannel& ch, Fault& fault) {
  json vectors = json::array();
  size_t tokens = 0;
  bool stop = false;
  for (const std::vector<int32_t>& input : job.inputs) {
    if (fault.kind == Fault::Stall && static_cast<int>(vectors.size()) >= fault.after) {
      fault.kind = Fault::None;
      stop = cancelled(ch, job.id, -1);
    } else {
      stop = cancelled(ch, job.id, 0);
    }
    if (stop) break;
    vectors.push_back(float_array(embed(model, input, static_cast<Pooling>(job.pooling))));
    tokens += input.size();
  }
  std::vector<int32_t> cache(model.tokens().begin(), model.tokens().end());
  json done = {{"type", "done"}, {"id", job.id}, {"prompt_tokens", tokens}, {"embeddings", std::move(vectors)}, {"cache", cache}};
  if (stop) done["finish_reason"] = "cancelled";
  return done;
}

}  // namespace

std::string job_line(const Job& job) {
  json bias = json::array();
  for (const auto [id, b] : job.sampling.logit_bias) bias.push_back({id, std::isinf(b) ? json(nullptr) : json(b)});
  return dump({{"type", "job"},
               {"id", job.id},
               {"prompt", job.prompt},
               {"max_tokens", job.max_tokens},
               {"temperature", job.sampling.temperature},
               {"top_p", job.sampling.top_p},
               {"top_k", job.sampling.top_k},
               {"min_p", job.sampling.min_p},
               {"repeat_penalty", job.sampling.repeat_penalty},
               {"frequency_penalty", job.sampling.frequency_penalty},
               {"presence_penalty", job.sampling.presence_penalty},
               {"seed", job.sampling.seed},
               {"logit_bias", std::move(bias)},
               {"ignore_eos", job.ignore_eos},
               {"stop", job.stop},
               {"json_object", job.json_object},
               {"json_schema", job.json_schema},
               {"grammar", job.grammar},
               {"tagged_json", job.tagged_json},
               {"kept_tokens", job.kept_tokens},
               {"logprobs", job.logprobs},
               {"echo_from", job.echo_from},
               {"pooling", job.pooling},
               {"inputs", job.inputs}});
}

std::string cancel_line(uint64_t job_id) { return dump({{"type", "cancel"}, {"id", job_id}}); }

int run_worker(int fd, const std::string& model_path, const RuntimeOptions& options, const DraftSettings& draft_settings) {
  LineChannel ch(fd);
  Model model(model_path, options);
  std::optional<Model> draft;  // the front checked its vocabulary
  if (!draft_settings.path.empty()) draft.emplace(draft_settings.path, draft_runtime_options(model.context_length(), options));
  Fault fault = fault_from_env();
  std::unique_ptr<GrammarConstraint> constraint;  // made for the first job that asks (reads the vocabulary)
  std::vector<int32_t> constraint_kept;  // the special tokens it was made to allow
  std::string line;
  while (ch.read_line(line, -1) == LineChannel::Read::Line) {
    const json j = json::parse(line, nullptr, false);
    if (!j.is_object() || j.value("type", "") != "job") continue;  // a stale cancel
    Job job;
    try {
      job = job_from(j);
    } catch (const json::exception& e) {
      ch.write_line(dump({{"type", "error"}, {"id", j.value("id", uint64_t{0})}, {"message", e.what()}}));
      continue;
    }
    if (job.pooling > 0) {
      try {
        ch.write_line(dump(embedding_done(model, job, ch, fault)));
      } catch (const std::exception& e) {
        ch.write_line(dump({{"type", "error"}, {"id", job.id}, {"message", e.what()}}));
      }
      fault.kind = Fault::None;  // faults apply to the first job only
      continue;
    }
    Sampler sampler(job.sampling);
    GenerateOptions go;
    go.n_predict = job.max_tokens;
    go.ignore_eos = job.ignore_eos;
    go.context_shift = false;
    if (draft) go.draft = {&*draft, draft_settings.max, draft_settings.p_min};
    if (job.json_object || !job.grammar.empty() || !job.tagged_json.empty()) {
      if (!constraint || constraint_kept != job.kept_tokens) {
        constraint = std::make_unique<GrammarConstraint>(model.tokenizer(), job.kept_tokens);
        constraint_kept = job.kept_tokens;
      }
      try {  // the front checked the texts: this does not throw
        if (!job.grammar.empty()) constraint->set_gbnf(job.grammar);
        else if (!job.tagged_json.empty()) constraint->set_tagged_json(job.tagged_json);
        else if (!job.json_schema.empty()) constraint->set_schema(job.json_schema);
        else constraint->set_object();
      } catch (const Error& e) {
        ch.write_line(dump({{"type", "error"}, {"id", job.id}, {"message", e.what()}}));
        continue;
      }
      go.constraint = constraint.get();
    }
    ReplyText reply(model.tokenizer(), job.stop, job.kept_tokens);
    bool was_cancelled = false, front_gone = false;
    int tokens = 0;
    std::optional<LogprobQueue> logprobs;
    if (job.logprobs >= 0) {
      logprobs.emplace(model.tokenizer(), job.logprobs, job.kept_tokens);
      go.on_logits = [&](int32_t id, std::span<const float> logits) { logprobs->add(id, logits); };
    }
    // `end`: the last text; unless a stop string cut the reply, every entry goes with it.
    auto send_text = [&](const std::string& text, bool end = false) {
      const json entries = logprobs ? logprobs->take(text, end && !reply.stopped()) : json::array();
      if (text.empty() && entries.empty()) return;
      json line = {{"type", "text"}, {"id", job.id}, {"text", text}};
      if (!entries.empty()) line["logprobs"] = entries;
      if (!ch.write_line(dump(line))) front_gone = true;
    };
    GenerationStats st;
    const bool echoed = job.logprobs >= 0 && job.echo_from >= 0;
    try {
      if (echoed) logprobs->add_prompt(prompt_logprobs(model, job.prompt, job.echo_from, job.logprobs));
      st = generate(model, job.prompt, sampler, go, [&](int32_t id) {
        send_text(reply.push(id));
        ++tokens;
        if (fault.kind == Fault::Abort && tokens >= fault.after) std::abort();
        if (fault.kind == Fault::Stall && tokens >= fault.after) {
          fault.kind = Fault::None;
          was_cancelled = cancelled(ch, job.id, -1);
          return false;
        }
        was_cancelled = cancelled(ch, job.id, 0);
        return !was_cancelled && !front_gone && !reply.stopped();
      });
    } catch (const std::exception& e) {
      ch.write_line(dump({{"type", "error"}, {"id", job.id}, {"message", e.what()}}));
      continue;
    }
    if (front_gone) break;
    fault.kind = Fault::None;  // faults apply to the first job only
    if (!was_cancelled) send_text(reply.finish(), true);
    const char* finish = was_cancelled                                ? "cancelled"
                         : reply.stopped()                            ? "stop"
                         : st.stop == StopReason::EndOfSequence       ? "stop"
                         : st.stop == StopReason::Complete            ? "stop"
                                                                      : "length";
    std::vector<int32_t> cache(model.tokens().begin(), model.tokens().end());
    ch.write_line(dump({{"type", "done"},
                        {"id", job.id},
                        {"finish_reason", finish},
                        {"stop_string", reply.matched()},
                        {"prompt_tokens", job.prompt.size()},
                        {"cached_tokens", echoed ? 0 : st.reused_tokens},  // an echo ran the whole prompt
                        {"completion_tokens", st.generated_tokens - (st.stop == StopReason::EndOfSequence ? 1 : 0)},
                        {"prompt_ms", st.prompt_ms},
                        {"eval_ms", st.eval_ms},
                        {"cache", cache}}));
  }
  return 0;
}

}  // namespace qrun::server
