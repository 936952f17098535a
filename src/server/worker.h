// A server worker: one process with its own mapping of the model file (the page cache
// holds one copy for all of them) and its own KV cache, running one job at a time.
// The front sends a job as a JSON line; the worker answers with text lines and one
// "done" line. A "cancel" line for the running job stops it after the current token.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qrun/model.h"
#include "qrun/sampler.h"

namespace qrun::server {

struct Job {
  uint64_t id = 0;
  std::vector<int32_t> prompt;  // BOS and chat template already applied
  int max_tokens = 0;           // prompt + max_tokens fit the context (checked by the front)
  SamplerConfig sampling;
  bool ignore_eos = false;
  std::vector<std::string> stop;
  bool json_object = false;  // the reply is JSON (GrammarConstraint)
  std::string json_schema;   // what the JSON must be; "" for any object
  std::string grammar;       // GBNF text, when not json_object
  std::string tagged_json;   // GrammarConstraint::set_tagged_json's spec, when not json_object
  std::vector<int32_t> kept_tokens;  // special tokens the reply's text keeps (tool call markers)
  int logprobs = -1;         // >= 0: each token's log-probability and this many alternatives (src/server/logprobs.h)
  int echo_from = -1;        // with logprobs, >= 0: also those of the prompt's tokens from this one on
  // An embedding job instead (pooling > 0, a qrun::Pooling): one unit vector per input,
  // answered in the done line's "embeddings"; prompt is then the first input.
  int pooling = 0;
  std::vector<std::vector<int32_t>> inputs;
};

std::string job_line(const Job& job);
std::string cancel_line(uint64_t job_id);

// Serves jobs from the socket `fd` until the front closes it; returns the exit code.
// Lines to the front: {"type": "text", "text", "logprobs": [chat entries of the tokens
// since the last text line], only with Job::logprobs} (with echo_from, the prompt's come
// first, in a line of empty text), then {"type": "done", ...} or {"type": "error", "message"}.
// An embedding job is answered by its done line alone.
// Test hook (the server's crash and disconnect tests; nothing happens when unset):
// QRUN_WORKER_FAULT="abort:N:FLAG" aborts the worker after N tokens of its first job,
// "stall:N:FLAG" stops sending after N tokens (an embedding job: inputs) of its first
// job until it is cancelled;
// only the one worker that creates the file FLAG does it.
// draft: speculative decoding's draft model (qserve --model-draft), loaded by each worker.
struct DraftSettings {
  std::string path;  // empty: none
  int max = 16;
  float p_min = 0.75f;
};
int run_worker(int fd, const std::string& model_path, const RuntimeOptions& options, const DraftSettings& draft = {});

}  // namespace qrun::server
