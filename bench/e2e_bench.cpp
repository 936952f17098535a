// End-to-end speed like llama-bench: pp (prompt tokens/s over an N-token prompt) and
// tg (generation tokens/s over M tokens), median of R runs, for each thread count.
// Also the weight bytes streamed per second during generation against bandwidth.
//
//   e2e_bench -m model.q4 [-m model.q8 ...] [-t 1,2] [-p 512] [-n 128] [-r 5] [--target AVX2]
// --target runs the kernels of that Highway target (one this CPU supports), to measure
// what machines without AVX-512 get.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "simd/hwy_targets.h"  // before any hwy header: the library's target set

#include "hwy/targets.h"
#include "qrun/model.h"
#include "qrun/sampler.h"
#include "simd/kernels.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
  return out;
}

// Bytes of weights one decode step reads: every layer plus the output head.
uint64_t weight_bytes_per_token(const qrun::ModelFile& f) {
  uint64_t b = 0;
  for (const auto& t : f.tensors())
    if (t.layer >= 0 || t.name == "output" || (t.name == "tok_embeddings" && f.hparams().tied_embeddings)) b += t.size;
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> models;
  std::vector<int> threads = {1, 2};
  int n_prompt = 512, n_gen = 128, reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "-m") models.push_back(v);
    else if (k == "-t") threads = parse_list(v);
    else if (k == "-p") n_prompt = std::stoi(v);
    else if (k == "-n") n_gen = std::stoi(v);
    else if (k == "-r") reps = std::stoi(v);
    else if (k == "--target") {
      int64_t chosen = 0;
      for (int64_t t : hwy::SupportedAndGeneratedTargets())
        if (v == hwy::TargetName(t)) chosen = t;
      if (chosen == 0) {
        std::fprintf(stderr, "target %s is not compiled in or not supported by this CPU\n", v.c_str());
        return 2;
      }
      hwy::SetSupportedTargetsForTest(chosen);
    }
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (models.empty()) {
    std::fprintf(stderr, "usage: e2e_bench -m MODEL [-m MODEL...] [-t 1,2] [-p 512] [-n 128] [-r 5]\n");
    return 2;
  }
  std::printf("SIMD target: %s\n", qrun::simd_target_name());
  std::printf("| model | size MiB | threads | pp%d tok/s | tg%d tok/s | tg weight GB/s |\n", n_prompt, n_gen);
  std::printf("|---|---|---|---|---|---|\n");
  for (const auto& path : models) {
    for (int t : threads) {
      qrun::RuntimeOptions ro;
      ro.threads = t;
      ro.context = n_prompt + n_gen + 8;
      ro.batch = 64;
      qrun::Model m(path, ro);
      const int vocab = static_cast<int>(m.hparams().vocab_size);
      std::mt19937 rng(42);
      std::vector<int32_t> prompt(static_cast<size_t>(n_prompt));
      for (auto& id : prompt) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
      std::vector<float> logits(static_cast<size_t>(vocab));
      std::vector<double> pp, tg;
      for (int r = 0; r < reps; ++r) {
        m.reset();
        auto t0 = std::chrono::steady_clock::now();
        m.forward(prompt, logits.data());
        pp.push_back(n_prompt / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        // tg is measured from an empty context, as llama-bench does.
        m.reset();
        int32_t tok = 1;
        t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n_gen; ++i) {
          m.forward(std::span<const int32_t>(&tok, 1), logits.data());
          tok = qrun::argmax(logits);
        }
        tg.push_back(n_gen / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      const double tg_med = median(tg);
      std::printf("| %s | %.1f | %d | %.1f | %.1f | %.2f |\n", path.c_str(),
                  static_cast<double>(m.file().header().file_size) / (1 << 20), t, median(pp), tg_med,
                  tg_med * static_cast<double>(weight_bytes_per_token(m.file())) / 1e9);
      std::fflush(stdout);
    }
  }
  return 0;
}
