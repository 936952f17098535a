// qppl: perplexity of a model on a text, and KL divergence against a reference run.
//   qppl -m ref.f32 -f text.txt -c 256 --kl-divergence-base ref.kld
//   qppl -m model.q4 -f text.txt -c 256 --kl-divergence ref.kld
#include <cstdio>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "src/cli/cli_common.h"
#include "src/format/text_file.h"
#include "qrun/error.h"
#include "qrun/mapped_file.h"
#include "qrun/model.h"
#include "qrun/perplexity.h"

int main(int argc, char** argv) {
  qrun::install_mapping_fault_handler("qppl");
  CLI::App app{"qppl: perplexity and KL divergence of a qrun model on a text"};
  std::string model_path, text_path;
  qrun::PerplexityOptions po;
  int threads = 0, q8_act = 0;
  std::string cache_type_k = "f16", cache_type_v = "f16";
  app.add_option("-m,--model", model_path, "Model file")->required();
  app.add_option("-f,--file", text_path, "Text to score")->required();
  app.add_option("-c,--ctx-size", po.context, "Window size in tokens; the second half of each is scored")
      ->check(CLI::Range(8, 1 << 20));
  app.add_option("--chunks", po.max_chunks, "Score only the first N windows (default: all)")->check(CLI::Range(0, 1 << 30));
  app.add_option("-t,--threads", threads, "Threads (default: physical cores; performance cores of a hybrid CPU)")->check(CLI::Range(0, 1024));
  app.add_option("--kl-divergence-base", po.save_kl_base, "Save this (reference) model's log-probabilities here");
  qrun::cli::add_q8_activations_option(app, q8_act);
  qrun::cli::add_cache_type_options(app, cache_type_k, cache_type_v);
  qrun::cli::LoraFlags lora;
  qrun::cli::add_lora_options(app, lora, "Apply this LoRA adapter (a PEFT folder or a llama.cpp GGUF adapter) at run time");
  app.add_option("--kl-divergence", po.kl_base, "Compare against log-probabilities saved by a reference run");
  try {
    app.parse(qrun::cli::spelled_out_args(argc, argv));
  } catch (const CLI::ParseError& e) {
    return qrun::cli::usage_exit(app, e);
  }
  const std::vector<qrun::LoraOption> adapters = lora.adapters();
  try {
    const std::string text = qrun::read_text_file(text_path, "text file");
    qrun::RuntimeOptions ro;
    ro.threads = threads;
    ro.context = po.context;
    ro.batch = std::min(po.context, 256);
    ro.q8_activation_bits = q8_act;
    ro.cache_type_k = qrun::parse_kv_type(cache_type_k);
    ro.cache_type_v = qrun::parse_kv_type(cache_type_v);
    ro.lora = qrun::cli::lora_updates_for(model_path, adapters);
    qrun::Model model(model_path, ro);
    const auto r = qrun::run_perplexity(model, text, po, [](int c, int n, double ppl) {
      std::fprintf(stderr, "[%d/%d] running perplexity %.4f\n", c, n, ppl);
    });
    std::printf("chunks %d, scored tokens %d, context %d\n", r.chunks, r.scored_tokens, po.context);
    if (const std::string q8 = model.plan().describe_q8_activations(); !q8.empty()) std::printf("%s\n", q8.c_str());
    const auto& kv = model.kv_cache();
    std::printf("KV cache %s\n", qrun::describe_kv_types(kv.key_type(), kv.value_type()).c_str());
    std::printf("perplexity: %.4f +/- %.4f\n", r.ppl, r.ppl_err);
    if (r.has_kl) {
      std::printf("base perplexity: %.4f, ratio PPL(Q)/PPL(base): %.4f\n", r.ppl_base, r.ppl / r.ppl_base);
      std::printf("mean KLD: %.6f +/- %.6f, 99th percentile KLD: %.6f\n", r.kld_mean, r.kld_err, r.kld_p99);
      std::printf("same top-1: %.2f%%\n", 100.0 * r.top1_agreement);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qppl: %s\n", e.what());
    return 1;
  }
}
