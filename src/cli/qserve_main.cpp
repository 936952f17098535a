// qserve: an OpenAI-compatible HTTP server. The front process queues requests and hands
// each to an idle worker process; every worker maps the model file read-only (one copy
// in the page cache for all) and keeps its own KV cache, so a request that continues a
// conversation a worker has cached evaluates only the new tokens.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "qrun/thread_pool.h"
#include "qrun/error.h"
#include "qrun/generate.h"
#include "qrun/tokenizer.h"
#include "qrun/mapped_file.h"
#include "qrun/model.h"
#include "src/cli/cli_common.h"
#include "src/server/http_server.h"
#include "src/server/reasoning.h"
#include "src/server/worker.h"

int main(int argc, char** argv) {
  qrun::install_mapping_fault_handler("qserve");
  CLI::App app{"qserve: OpenAI-compatible server for a qrun model file"};
  qrun::server::ServerOptions o;
  int threads = 0, batch = 0, worker_fd = -1, q8_activations = 0;
  bool swa_full = false;
  std::string cache_type_k = "f16", cache_type_v = "f16";
  app.add_option("-m,--model", o.model_path, "Model file written by qconvert")->required();
  app.add_option("--host", o.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", o.port, "Port to listen on")->check(CLI::Range(1, 65535))->capture_default_str();
  app.add_option("--workers", o.workers, "Worker processes (default: one per 2 physical cores)")
      ->check(CLI::Range(1, 256));
  app.add_option("-t,--threads", threads, "Threads per worker (default: physical cores / workers)")
      ->check(CLI::Range(0, 1024));
  app.add_option("-c,--ctx-size", o.context, "Context per worker (default: min(trained context, 4096))")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("-b,--batch-size", batch, "Prompt tokens per batch")->check(CLI::Range(0, 4096));
  qrun::cli::add_q8_activations_option(app, q8_activations);
  app.add_flag("--swa-full", swa_full, qrun::cli::kSwaFullHelp);
  qrun::cli::add_cache_type_options(app, cache_type_k, cache_type_v);
  qrun::cli::LoraFlags lora;
  qrun::cli::add_lora_options(app, lora, "Apply this LoRA adapter (a PEFT folder or a llama.cpp GGUF adapter) at run time, in every worker");
  app.add_option("--api-key", o.api_key, "Require 'Authorization: Bearer KEY' (all routes but /health)");
  app.add_option("--max-body", o.max_body, "Largest request body in bytes (413 beyond)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 30))->capture_default_str();
  app.add_option("--max-queue", o.max_queue, "Requests that may wait for a worker (503 beyond)")
      ->check(CLI::Range(0, 100000))->capture_default_str();
  app.add_option("--chat-template", o.chat_template, "Chat template instead of the model's: a file or the text");
  app.add_option("--chat-template-kwargs", o.chat_template_kwargs, qrun::cli::kChatTemplateKwargsHelp);
  std::string reasoning_format = "deepseek";
  app.add_option("--reasoning-format", reasoning_format,
                 "deepseek (or auto): a thinking model's <think> block goes to reasoning_content, apart from "
                 "content; none: it stays in content")
      ->check([](const std::string& name) {
        bool separate;
        return qrun::server::parse_reasoning_format(name, &separate) ? std::string() : "must be deepseek, auto or none";
      })
      ->capture_default_str();
  app.add_option("--pooling", o.pooling,
                 "How /v1/embeddings pools token states: mean, cls or last (default: the model's, else last)")
      ->check(CLI::IsMember({"mean", "cls", "last"}));
  qrun::server::DraftSettings draft;
  app.add_option("--model-draft", draft.path,
                 "-md FILE: speculative decoding, each worker with this smaller model of the same vocabulary "
                 "guessing tokens (the replies are the model's own)");
  app.add_option("--draft-max", draft.max, "Tokens the draft model guesses at most per pass of the model")
      ->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--draft-p-min", draft.p_min, "The draft stops guessing where its top probability is below this")
      ->check(CLI::Range(0.0f, 1.0f))->capture_default_str();
  app.add_option("--worker-fd", worker_fd, "Internal: run as a worker on this socket")->group("");
  o.workers = 0;
  try {
    app.parse(qrun::cli::spelled_out_args(argc, argv, {{"-md", "--model-draft"}}));
  } catch (const CLI::ParseError& e) {
    return qrun::cli::usage_exit(app, e);
  }
  qrun::server::parse_reasoning_format(reasoning_format, &o.separate_reasoning);
  const std::vector<qrun::LoraOption> adapters = lora.adapters();
  try {
    const int cores = qrun::physical_core_count();
    if (o.workers == 0) o.workers = std::max(1, cores / 2);
    o.threads_per_worker = threads > 0 ? threads : std::max(1, cores / o.workers);
    qrun::RuntimeOptions ro;
    ro.context = o.context;
    ro.threads = o.threads_per_worker;
    ro.batch = batch;
    ro.q8_activation_bits = q8_activations;
    ro.swa_full = swa_full;
    ro.cache_type_k = qrun::parse_kv_type(cache_type_k);
    ro.cache_type_v = qrun::parse_kv_type(cache_type_v);
    // Checked here too, so that a bad adapter is one message, not one per worker.
    ro.lora = qrun::cli::lora_updates_for(o.model_path, adapters);
    if (worker_fd >= 0) return qrun::server::run_worker(worker_fd, o.model_path, ro, draft);
    if (ro.lora) std::fprintf(stderr, "qserve: lora: %s in each worker\n", qrun::cli::describe_lora(*ro.lora).c_str());
    ro.lora.reset();
    if (!draft.path.empty()) {  // refused here, once, rather than by every worker
      const qrun::ModelFile model_file(o.model_path), draft_file(draft.path);
      qrun::check_draft_vocabulary(qrun::Tokenizer(qrun::deserialize_tokenizer(model_file)),
                                   qrun::Tokenizer(qrun::deserialize_tokenizer(draft_file)), draft.path);
    }

    o.worker_argv = {"/proc/self/exe", "--worker-fd", "3", "-m", o.model_path, "-t",
                     std::to_string(o.threads_per_worker), "-c", std::to_string(o.context), "-b",
                     std::to_string(batch), "--cache-type-k", cache_type_k, "--cache-type-v", cache_type_v};
    if (q8_activations) o.worker_argv.insert(o.worker_argv.end(), {"--q8-activations", std::to_string(q8_activations)});
    if (swa_full) o.worker_argv.push_back("--swa-full");
    for (const std::string& dir : lora.dirs) o.worker_argv.insert(o.worker_argv.end(), {"--lora", dir});
    for (size_t i = 0; i + 1 < lora.scaled.size(); i += 2)
      o.worker_argv.insert(o.worker_argv.end(), {"--lora-scaled", lora.scaled[i], lora.scaled[i + 1]});
    if (!draft.path.empty())
      o.worker_argv.insert(o.worker_argv.end(), {"--model-draft", draft.path, "--draft-max", std::to_string(draft.max),
                                                 "--draft-p-min", std::to_string(draft.p_min)});
    return qrun::server::run_server(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qserve: %s\n", e.what());
    return 1;
  }
}
