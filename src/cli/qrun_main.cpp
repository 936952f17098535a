// qrun: generate text from a qrun model file. Text streams to stdout; timings to stderr.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "qrun/error.h"
#include "qrun/generate.h"
#include "qrun/mapped_file.h"
#include "qrun/memory_estimate.h"
#include "qrun/memory_stats.h"
#include "qrun/model.h"
#include "qrun/sampler.h"
#include "qrun/tokenizer.h"
#include "simd/kernels.h"
#include "src/chat_template.h"

namespace {

struct Args {
  std::string model, prompt, prompt_file;
  int n_predict = 128, context = 0, threads = 0, batch = 0;
  qrun::SamplerConfig sampling;
  std::string prefetch;
  bool no_blas = false, mlock = false, no_mmap = false, ignore_eos = false, verbose_prompt = false, special = false;
  bool no_display_prompt = false, verify = false, estimate = false, verbose = false;
  std::string mem_budget;
  int n_gpu_layers = 0;
  std::string gpu_layers;
  bool chat = false;
  std::string system_prompt, chat_template;
};

// --chat: the prompt as one user turn (after an optional system turn), rendered with
// the model's chat template (or --chat-template), ending with the assistant's header.
std::string render_chat(const Args& a, const qrun::Tokenizer& tok) {
  const std::string& tmpl = a.chat_template.empty() ? tok.chat_template() : a.chat_template;
  if (tmpl.empty()) throw qrun::Error("--chat: this model has no chat template; give one with --chat-template");
  std::vector<qrun::ChatMessage> messages;
  if (!a.system_prompt.empty()) messages.push_back({"system", a.system_prompt});
  messages.push_back({"user", a.prompt});
  auto text_of = [&](int32_t id) { return id >= 0 ? std::string(tok.piece(id)) : std::string(); };
  const auto eos = tok.eos_ids();
  return qrun::apply_chat_template(tmpl, messages, true, text_of(tok.bos_id()), eos.empty() ? "" : text_of(eos[0]));
}

// "-ngl N": the last N layers, as llama.cpp offloads; "--gpu-layers A-B": that range.
void parse_gpu_layers(const Args& a, int n_layers, qrun::RuntimeOptions& ro) {
  if (!a.gpu_layers.empty()) {
    int first = -1, last = -1;
    char tail = 0;
    if (std::sscanf(a.gpu_layers.c_str(), "%d-%d%c", &first, &last, &tail) != 2 || first < 0 || last < first)
      throw qrun::Error("--gpu-layers: expected a range like 0-9, got '" + a.gpu_layers + "'");
    ro.gpu_first_layer = first;
    ro.gpu_layer_count = last - first + 1;
  } else if (a.n_gpu_layers > 0) {
    ro.gpu_layer_count = std::min(a.n_gpu_layers, n_layers);
    ro.gpu_first_layer = n_layers - ro.gpu_layer_count;
  }
}

// "512M", "2G", "1.5G", "1048576" -> bytes.
uint64_t parse_size(const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw qrun::Error("--mem-budget: cannot read size '" + s + "' (use e.g. 512M or 2G)");
  }
  const std::string unit = s.substr(used);
  double mult = 1;
  if (unit == "K" || unit == "k" || unit == "KiB") mult = 1 << 10;
  else if (unit == "M" || unit == "m" || unit == "MiB") mult = 1 << 20;
  else if (unit == "G" || unit == "g" || unit == "GiB") mult = double(1 << 30);
  else if (!unit.empty()) throw qrun::Error("--mem-budget: unknown unit '" + unit + "' (use K, M or G)");
  if (!(v > 0)) throw qrun::Error("--mem-budget must be positive");
  return static_cast<uint64_t>(v * mult);
}

double mib(uint64_t b) { return static_cast<double>(b) / (1 << 20); }

void print_timings(double load_ms, const qrun::GenerationStats& st, const qrun::Model& m, uint64_t disk_bytes) {
  auto rate = [](int n, double ms) { return ms > 0 ? 1000.0 * n / ms : 0.0; };
  const auto mem = qrun::read_memory_stats();
  std::fprintf(stderr, "\n");
  std::fprintf(stderr, "qrun: load time   = %10.2f ms\n", load_ms);
  std::fprintf(stderr, "qrun: prompt eval = %10.2f ms / %5d tokens (%8.2f ms per token, %9.2f tokens per second)\n",
               st.prompt_ms, st.prompt_tokens, st.prompt_tokens ? st.prompt_ms / st.prompt_tokens : 0.0,
               rate(st.prompt_tokens, st.prompt_ms));
  std::fprintf(stderr, "qrun: eval time   = %10.2f ms / %5d runs   (%8.2f ms per token, %9.2f tokens per second)\n",
               st.eval_ms, st.eval_tokens, st.eval_tokens ? st.eval_ms / st.eval_tokens : 0.0,
               rate(st.eval_tokens, st.eval_ms));
  std::fprintf(stderr, "qrun: memory      = peak RSS %.1f MiB; now %.1f MiB private + %.1f MiB mapped model (shared)\n",
               mib(mem.peak_rss), mib(mem.rss_anon), mib(mem.rss_file));
  std::fprintf(stderr, "qrun: threads     = %d, SIMD %s, %s, context %d, KV cache f16\n", m.threads(),
               qrun::simd_target_name(), m.kernel_choice().c_str(), m.context_length());
  if (m.gpu_layers() > 0)
    std::fprintf(stderr, "qrun: gpu         = %d layers on %s\n", m.gpu_layers(), m.gpu_device().c_str());
  const int layers = static_cast<int>(m.hparams().n_layers);
  const int runs = st.eval_tokens + 1;
  std::fprintf(stderr, "qrun: disk reads  = %.1f MiB during generation (%.2f MiB per token)", mib(disk_bytes),
               mib(disk_bytes) / runs);
  if (m.resident_layers() < layers)
    std::fprintf(stderr, "; %d layers resident, %d streamed", m.resident_layers(), layers - m.resident_layers());
  std::fprintf(stderr, "\n");
}

}  // namespace

int main(int argc, char** argv) {
  // The model file truncated or rewritten under us: one line naming it, exit 1.
  qrun::install_mapping_fault_handler("qrun");
  CLI::App app{"qrun: run a quantized LLM from a qrun model file"};
  Args a;
  app.add_option("-m,--model", a.model, "Model file written by qconvert")->required();
  app.add_option("-p,--prompt", a.prompt, "Prompt text");
  app.add_option("-f,--file", a.prompt_file, "Read the prompt from a file");
  app.add_option("-n,--n-predict", a.n_predict, "Tokens to generate (-1: until EOS or context end)")
      ->check(CLI::Range(-1, 1 << 24));
  app.add_option("-c,--ctx-size", a.context, "Context size (default: min(trained context, 4096))")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("-t,--threads", a.threads, "Threads (default: physical cores)")->check(CLI::Range(0, 1024));
  app.add_option("-b,--batch-size", a.batch, "Prompt tokens per batch (default: 256 for float weights, 64 for q4/q8)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--temp", a.sampling.temperature, "Temperature (0: greedy)")->check(CLI::Range(0.0, 100.0));
  app.add_option("--top-k", a.sampling.top_k, "Top-k (0: off)")->check(CLI::Range(0, 1 << 24));
  app.add_option("--top-p", a.sampling.top_p, "Top-p (1: off)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--min-p", a.sampling.min_p, "Min-p (0: off)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--repeat-penalty", a.sampling.repeat_penalty, "Repetition penalty (1: off)")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--repeat-last-n", a.sampling.repeat_last_n, "Tokens the penalty looks back")
      ->check(CLI::Range(0, 1 << 24));
  app.add_option("-s,--seed", a.sampling.seed, "Random seed (same seed, same output)");
  app.add_option("--prefetch", a.prefetch, "Weight prefetch of the int8 kernels: none, l1:BYTES or l2:BYTES "
                                           "(default: chosen for this CPU)");
  app.add_flag("--no-blas", a.no_blas, "Float-weight prompt batches on qrun's own kernels instead of OpenBLAS");
  app.add_flag("--mlock", a.mlock, "Lock the model in RAM (needs RLIMIT_MEMLOCK)");
  app.add_flag("--no-mmap", a.no_mmap, "Read the model into private memory instead of mapping it");
  app.add_flag("--ignore-eos", a.ignore_eos, "Keep generating past end-of-sequence");
  app.add_flag("--special", a.special, "Parse special-token text in the prompt as special tokens");
  app.add_flag("--verbose-prompt", a.verbose_prompt, "Print the prompt's tokens before generating");
  app.add_flag("--no-display-prompt", a.no_display_prompt, "Do not echo the prompt");
  app.add_flag("--verify", a.verify, "Verify every tensor checksum at load");
  app.add_option("--mem-budget", a.mem_budget,
                 "Memory budget, e.g. 512M or 2G: keep the layers that fit resident, stream the rest from disk");
  app.add_option("--n-gpu-layers", a.n_gpu_layers, "-ngl N: run the last N layers on the GPU (CUDA builds)")
      ->check(CLI::Range(0, 1 << 16));
  app.add_option("--gpu-layers", a.gpu_layers, "Run this range of layers on the GPU, e.g. 0-9")
      ->excludes("--n-gpu-layers");
  app.add_flag("--chat", a.chat, "Apply the model's chat template to the prompt (a user turn)");
  app.add_option("--system-prompt", a.system_prompt, "-sys TEXT: system turn for --chat");
  app.add_option("--chat-template", a.chat_template, "Jinja chat template to use instead of the model's");
  app.add_flag("--estimate", a.estimate, "Print the predicted peak memory for these settings and exit");
  app.add_flag("--verbose", a.verbose, "With generation: print the memory estimate beside the measured peak");
  // llama.cpp's single-dash long flags, which CLI11 does not take as they are.
  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) {
    const std::string arg = argv[i];
    args.push_back(arg == "-ngl" ? "--n-gpu-layers" : arg == "-sys" ? "--system-prompt" : arg);
  }
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    if (a.mlock && a.no_mmap) throw qrun::Error("--mlock and --no-mmap cannot be combined");
    qrun::RuntimeOptions ro;
    ro.prefetch = a.prefetch;
    ro.blas = !a.no_blas;
    ro.load_mode = a.no_mmap ? qrun::LoadMode::ReadPrivate : a.mlock ? qrun::LoadMode::MmapLocked : qrun::LoadMode::Mmap;
    ro.threads = a.threads;
    ro.context = a.context;
    ro.batch = a.batch;
    ro.verify_checksums = a.verify;
    if (!a.mem_budget.empty()) ro.mem_budget = parse_size(a.mem_budget);
    if (a.n_gpu_layers > 0 || !a.gpu_layers.empty())
      parse_gpu_layers(a, static_cast<int>(qrun::ModelFile(a.model).hparams().n_layers), ro);
    if (a.estimate || a.verbose) {
      const auto est = qrun::estimate_memory(a.model, ro);
      if (a.estimate) {
        std::printf("%s", qrun::format_estimate(est).c_str());
        return 0;
      }
      std::fprintf(stderr, "qrun: predicted peak memory %.1f MiB\n", mib(est.total()));
    }
    if (!a.prompt_file.empty()) {
      std::ifstream in(a.prompt_file, std::ios::binary);
      if (!in) throw qrun::Error(a.prompt_file, -1, "cannot open prompt file");
      std::stringstream ss;
      ss << in.rdbuf();
      a.prompt = ss.str();
    }
    if (a.prompt.empty()) throw qrun::Error("empty prompt: give -p TEXT or -f FILE");

    const auto t0 = std::chrono::steady_clock::now();
    qrun::Model model(a.model, ro);
    const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

    const qrun::Tokenizer& tok = model.tokenizer();
    std::vector<int32_t> prompt;
    if (a.chat) {
      // Templates write their special tokens as text; BOS is added only if they do not.
      const std::string rendered = render_chat(a, tok);
      const std::string bos = tok.bos_id() >= 0 ? std::string(tok.piece(tok.bos_id())) : std::string();
      const bool has_bos = !bos.empty() && rendered.rfind(bos, 0) == 0;
      prompt = tok.encode(rendered, !has_bos, true);
      a.prompt = rendered;
    } else {
      prompt = tok.encode(a.prompt, true, a.special);
    }
    if (prompt.empty()) throw qrun::Error("prompt encodes to no tokens");
    if (static_cast<int>(prompt.size()) > model.context_length())
      throw qrun::Error("prompt is " + std::to_string(prompt.size()) + " tokens, longer than the context of " +
                        std::to_string(model.context_length()) + " (raise -c)");
    if (a.verbose_prompt) {
      std::fprintf(stderr, "prompt: %zu tokens\n", prompt.size());
      for (int32_t id : prompt)
        std::fprintf(stderr, "%6d -> '%s'\n", id, std::string(tok.piece(id)).c_str());
    }
    if (!a.no_display_prompt) {
      std::fwrite(a.prompt.data(), 1, a.prompt.size(), stdout);
      std::fflush(stdout);
    }
    const uint64_t disk0 = qrun::storage_bytes_read();
    qrun::Sampler sampler(a.sampling);
    qrun::StreamingDecoder decoder(tok);
    qrun::GenerateOptions go;
    go.n_predict = a.n_predict;
    go.ignore_eos = a.ignore_eos;
    const auto stats = qrun::generate(model, prompt, sampler, go, [&](int32_t id) {
      const std::string text = decoder.push(id);
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    const std::string tail = decoder.flush();
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    print_timings(load_ms, stats, model, qrun::storage_bytes_read() - disk0);
    return 0;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "qrun: %s\n", e.what());
    return 1;
  }
}
