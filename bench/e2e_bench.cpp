// End-to-end speed like llama-bench: pp (prompt tokens/s over an N-token prompt) and
// tg (generation tokens/s over M tokens), median of R runs, for each thread count.
// Beside tg: the weight bytes streamed per second, and that as a fraction of the
// machine's read bandwidth measured here on the same mapping with the same threads.
//
//   e2e_bench -m model.q4 [-m model.q8 ...] [-t 1,2] [-p 512] [-n 128] [-r 5] [--target AVX2]
//             [-d 4096] [-ctk q8_0|q4_0|iq4_nl -ctv q8_0|q4_0|iq4_nl]
// -d runs pp and tg after that many tokens already in the context (newer llama-bench's
// -d), where attention's reads of the KV cache add to the weights'.
// --target runs the kernels of that Highway target (one this CPU supports), to measure
// what machines without AVX-512 get: AVX2 (Zen 2/3), AVX2+VNNI (Intel client CPUs with
// AVX-VNNI), AVX3, AVX3+VNNI (bench/simd_target.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/read_bandwidth.h"
#include "bench/simd_target.h"
#include "qrun/cpu_info.h"
#include "qrun/model.h"
#include "qrun/sampler.h"
#include "simd/kernels.h"
#include "src/cli/cli_common.h"
#include "src/runtime/kernel_choice.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Bytes of weights one decode step reads: every layer plus the output head; of a
// mixture-of-experts layer's experts, the n_experts_used a token goes to.
uint64_t weight_bytes_per_token(const qrun::ModelFile& f) {
  const auto& hp = f.hparams();
  uint64_t b = 0;
  for (const auto& t : f.tensors()) {
    if (t.name.ends_with("_experts")) b += t.size / hp.n_experts * hp.n_experts_used;
    else if (t.layer >= 0 || t.name == "output" || (t.name == "tok_embeddings" && hp.tied_embeddings)) b += t.size;
  }
  return b;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Result {
  double pp, tg;
};

Result run(qrun::Model& m, int depth, int n_prompt, int n_gen, int reps) {
  const int vocab = static_cast<int>(m.hparams().vocab_size);
  std::mt19937 rng(42);
  std::vector<int32_t> prompt(static_cast<size_t>(n_prompt)), context(static_cast<size_t>(depth));
  for (auto& id : prompt) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  for (auto& id : context) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  std::vector<float> logits(static_cast<size_t>(vocab));
  std::vector<double> pp, tg;
  // Warm-up, as llama-bench does: one token pages in every weight and wakes the threads.
  m.reset();
  const int32_t bos = 1;
  m.forward(std::span<const int32_t>(&bos, 1), logits.data());
  for (int r = 0; r < reps; ++r) {
    if (n_prompt > 0) {
      m.reset();
      if (depth > 0) m.forward(context, logits.data());
      const auto t0 = std::chrono::steady_clock::now();
      m.forward(prompt, logits.data());
      pp.push_back(n_prompt / seconds_since(t0));
    }
    if (n_gen > 0) {
      // tg is measured from an empty context (or after -d tokens), as llama-bench does.
      m.reset();
      if (depth > 0) m.forward(context, logits.data());
      int32_t tok = 1;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < n_gen; ++i) {
        m.step(tok, logits.data());
        tok = qrun::argmax(logits);
      }
      tg.push_back(n_gen / seconds_since(t0));
    }
  }
  return {pp.empty() ? 0 : median(pp), tg.empty() ? 0 : median(tg)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"e2e_bench: prompt and generation tokens/s, like llama-bench"};
  std::vector<std::string> models;
  std::vector<int> threads = {1, 2};
  int n_prompt = 512, n_gen = 128, depth = 0, reps = 5, batch = 0, q8_act = 0;
  std::string target, prefetch, output = "md", cache_type_k = "f16", cache_type_v = "f16";
  bool no_blas = false, no_mmap = false;
  app.add_option("-m,--model", models, "Model file(s)")->required()->check(CLI::ExistingFile);
  app.add_option("-t,--threads", threads, "Thread counts, comma separated")
      ->delimiter(',')->check(CLI::Range(1, 1024));
  app.add_option("-p,--n-prompt", n_prompt, "Prompt tokens (0: skip pp)")->check(CLI::Range(0, 1 << 16));
  app.add_option("-n,--n-gen", n_gen, "Generated tokens (0: skip tg)")->check(CLI::Range(0, 1 << 16));
  app.add_option("-d,--n-depth", depth, "Tokens in the context before pp and tg are measured")
      ->check(CLI::Range(0, 1 << 20));
  qrun::cli::add_cache_type_options(app, cache_type_k, cache_type_v);
  app.add_option("-r,--repetitions", reps, "Repetitions (the median is reported)")->check(CLI::Range(1, 1000));
  app.add_option("-b,--batch-size", batch, "Prompt tokens per forward batch (default: the runtime's)")
      ->check(CLI::Range(1, 4096));
  app.add_option("-o,--output", output, "md (a table) or csv (one line per run, for scripts)")
      ->check(CLI::IsMember({"md", "csv"}));
  app.add_option("--prefetch", prefetch,
                 "Force the kernels' weight prefetch: none, l1:BYTES, l2:BYTES; BYTES/BYTES_WIDE for q8 and float "
                 "rows apart; then optionally ,rows:1 or ,rows:4 (q8/q6/q5 matvec rows side by side)");
  app.add_flag("--no-blas", no_blas, "Float-weight prompts on qrun's own kernels, not OpenBLAS");
  qrun::cli::add_q8_activations_option(app, q8_act);
  app.add_flag("--no-mmap", no_mmap, "Read the model into private memory (as qrun --no-mmap; llama-bench -mmp 0)");
  app.add_option("--target", target, "Run the kernels of this Highway target (e.g. AVX2, AVX2+VNNI)");
  try {
    app.parse(qrun::cli::spelled_out_args(argc, argv));
  } catch (const CLI::ParseError& e) {
    return qrun::cli::usage_exit(app, e);
  }
  if (!target.empty() && !qrun::bench::force_simd_target(target)) {
    std::fprintf(stderr, "e2e_bench: target %s is not compiled in or not supported by this CPU\n", target.c_str());
    return 2;
  }
  try {
    char date[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M", std::localtime(&now));
    std::printf("%sCPU: %s; %s; SIMD target %s; %s; KV cache %s; depth %d\n", output == "csv" ? "# " : "",
                qrun::cpu_description().c_str(), date, qrun::simd_target_name(),
                qrun::apply_kernel_choice(prefetch, !no_blas).c_str(),
                qrun::describe_kv_types(qrun::parse_kv_type(cache_type_k), qrun::parse_kv_type(cache_type_v)).c_str(),
                depth);
    const bool csv = output == "csv";
    if (csv) {
      std::printf("model,size_mib,threads,n_prompt,n_gen,pp_ts,tg_ts,tg_weight_gbps,read_gbps\n");
    } else {
      std::printf("| model | size MiB | threads | pp%d tok/s | tg%d tok/s | tg weight GB/s | read GB/s | tg/read |\n",
                  n_prompt, n_gen);
      std::printf("|---|---|---|---|---|---|---|---|\n");
    }
    for (const auto& path : models) {
      for (int t : threads) {
        qrun::RuntimeOptions ro;
        ro.threads = t;
        ro.context = depth + n_prompt + n_gen + 8;
        ro.cache_type_k = qrun::parse_kv_type(cache_type_k);
        ro.cache_type_v = qrun::parse_kv_type(cache_type_v);
        ro.batch = batch;
        ro.prefetch = prefetch;
        ro.blas = !no_blas;
        ro.q8_activation_bits = q8_act;
        if (no_mmap) ro.load_mode = qrun::LoadMode::ReadPrivate;
        qrun::Model m(path, ro);
        if (const std::string q8 = m.plan().describe_q8_activations(); !q8.empty())
          std::fprintf(stderr, "e2e_bench: %s: %s\n", path.c_str(), q8.c_str());
        const Result r = run(m, depth, n_prompt, n_gen, reps);
        const auto& map = m.file().mapping();
        qrun::ThreadPool pool(t);
        const double read = qrun::bench::read_bandwidth(pool, map.data(), map.size(), t) / 1e9;
        const double tg_bw = r.tg * static_cast<double>(weight_bytes_per_token(m.file())) / 1e9;
        const double mib = static_cast<double>(m.file().header().file_size) / (1 << 20);
        if (csv)
          std::printf("%s,%.1f,%d,%d,%d,%.2f,%.2f,%.2f,%.2f\n", path.c_str(), mib, t, n_prompt, n_gen, r.pp, r.tg,
                      tg_bw, read);
        else
          std::printf("| %s | %.1f | %d | %.1f | %.1f | %.2f | %.1f | %.2f |\n", path.c_str(), mib, t, r.pp, r.tg,
                      tg_bw, read, read > 0 ? tg_bw / read : 0.0);
        std::fflush(stdout);
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "e2e_bench: %s\n", e.what());
    return 1;
  }
}
