#include "src/runtime/kernel_choice.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "qrun/error.h"
#include "qrun/model_layout.h"
#include "simd/blas_matmul.h"

namespace qrun {

// Lines in flight, not the instruction, bound a core's streaming rate: a prefetch into
// L2 far enough ahead to cover DRAM latency lets the L2's miss queue, not L1's few fill
// buffers, hold them. The distance scales with L2 (Zen 4, 1 MiB: 16-32 KiB measured best;
// beyond 48 KiB lines are evicted before use on smaller L2s). Rechecked on the Zen 4 VM
// (2026-12-06, tinyllama, `e2e_bench -p 0 -n 64 -r 2 --no-mmap --prefetch X`, rotating, two
// rounds, tok/s): q4 two threads l2:16k-48k 51.5-55.3 alike (bandwidth bound; 74-75 at
// 32k/48k once the VM's bandwidth rose mid-sweep), Zen 5's l1:8k 38.6-38.8, none
// 30.6-31.8; q8 one thread l2:24k 22.7-23.3, with Zen 5's one-row tiles 22.3-22.6, with
// l1:8k/3k,rows:1 14.9-15.0. So Zen 5's choices stay Zen 5's.
//
// Zen 5 is the exception measured so far: L1 prefetches a few KiB ahead beat every L2
// distance, and packed rows want them further ahead than q8 rows (2026-12-02, EPYC Zen 5 VM,
// tinyllama, weights in private memory, `e2e_bench -p 0 -n 64 --no-mmap --prefetch X`,
// configurations rotating, 3 rounds, tok/s one thread / two threads): q8 l1:2k
// 17.4-18.2, l1:3k 18.4-18.6 / 31.3-32.2, l1:4k 17.3-18.7, l1:6k 16.1-17.5; q4 l1:3k
// 36.6-45.9, l1:4k 41.7-47.5 / 58-75, l1:6k 45.0-52.5, l1:8k 45.6-55.5 / 74.7-75.5,
// l1:12k 44.9-51.9, l2:12k 33.4-36.0; q4m (q4 + q6 rows), its q6 rows at l1:2k 32.5-33.5,
// l1:3k 33.1-34.4, l1:6k 36.5-39.7, l1:8k 36.9-37.0. Float rows keep the q8 distance
// (not measured apart).
//
// Zen 5 also streams q8, q6 and q5 rows from DRAM faster one row per matvec tile than four
// side by side (AVX-512 VNNI kernels; 2026-12-03, same VM, rotating, two rounds):
// `kernels_bench BM_MatvecDram` (5632x2048) GB/s, 4 rows -> 1 row: q8 24.7-25.4 ->
// 31.2-34.0, q6 26.0-27.1 -> 30.9-39.5, q5 25.9-30.5 -> 38.0-38.7; but q4 39.1-39.2 ->
// 28.1-32.1 and q3 23.5-26.2 -> 16.1-25.3 (one row leaves their kernels compute bound: the
// activation loads are no longer shared), so those keep 4. `e2e_bench -p 0 -n 64 -r 3
// --no-mmap`, tinyllama q8, tok/s on one / two threads: 24.0-24.2 / 41.4-42.6 -> 26.2-26.9
// / 47.8-49.5.
PrefetchConfig default_prefetch(const CpuInfo& cpu) {
  if (cpu.family == CpuFamily::AmdZen5) return {PrefetchLevel::L1, 8 << 10, 3 << 10, 1};
  const int64_t l2 = cpu.l2_bytes > 0 ? static_cast<int64_t>(cpu.l2_bytes) : (512 << 10);
  const int64_t distance = std::clamp<int64_t>(l2 / 40 / 4096 * 4096, 8 << 10, 32 << 10);
  return {PrefetchLevel::L2, distance, distance};
}

std::string apply_kernel_choice(const std::string& forced_prefetch, bool blas) {
  std::string source = std::string(cpu_family_name(cpu_info().family)) + " default";
  PrefetchConfig c = default_prefetch(cpu_info());
  std::string text = forced_prefetch;
  if (text.empty()) {
    if (const char* env = std::getenv("QRUN_PREFETCH"); env && *env) {
      text = env;
      source = "QRUN_PREFETCH";
    }
  } else {
    source = "forced";
  }
  if (!text.empty()) {
    try {
      c = parse_prefetch_config(text);
    } catch (const std::invalid_argument& e) {
      throw Error(source == "forced" ? "--prefetch" : "QRUN_PREFETCH", -1, e.what());
    }
  }
  set_prefetch_config(c);
  if (const char* env = std::getenv("QRUN_BLAS"); env && std::string(env) == "0") blas = false;
  set_blas_enabled(blas);
  return "prefetch " + describe(c) + " (" + source + ")" +
         (blas ? ", float prompts on OpenBLAS " + blas_core_name() : ", no sgemm");
}

int prompt_batch(const ModelFile& file, int requested) {
  if (requested > 0) return requested;
  const DType t = file.get(layer_tensor_name(0, "wq")).dtype;
  const int dense = dtype_is_quantized(t) ? 64 : 256;
  const auto& hp = file.hparams();
  if (hp.n_experts == 0) return dense;
  // Each expert sees batch * used / experts tokens: keep that at half the dense batch
  // (in whole tiles of tokens).
  const int64_t moe = int64_t{dense} * hp.n_experts / (2 * int64_t{hp.n_experts_used}) / 16 * 16;
  return static_cast<int>(std::clamp<int64_t>(moe, dense, 512));
}

}  // namespace qrun
