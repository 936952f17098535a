// qserve's front process: OpenAI-compatible HTTP routes over a pool of worker processes.
//   POST /v1/chat/completions, POST /v1/completions (stream: server-sent events),
//   POST /v1/embeddings, GET /v1/models, GET /health.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qrun::server {

struct ServerOptions {
  std::string model_path;
  std::string host = "127.0.0.1";
  int port = 8080;
  int workers = 1;
  int threads_per_worker = 1;
  int context = 0;               // 0: the model's default (min(trained, 4096))
  int max_queue = 64;            // requests waiting for a worker before 503
  size_t max_body = 1 << 20;     // bytes; larger bodies get 413
  std::string api_key;           // empty: no key needed
  std::string chat_template;     // FILE_OR_TEXT; empty: the model's
  std::string chat_template_kwargs;  // a JSON object of template variables; a request's add to them
  bool separate_reasoning = true;    // --reasoning-format: a <think> block returned as reasoning_content
  std::string pooling;               // /v1/embeddings: mean, cls or last; empty: the model's, else last
  std::vector<std::string> worker_argv;  // how to start one worker (fd 3 its socket)
};

// Binds, prints "qserve: listening on http://HOST:PORT", serves until SIGINT/SIGTERM.
// Throws qrun::Error when the model cannot be read or the address cannot be bound.
int run_server(const ServerOptions& options);

}  // namespace qrun::server
