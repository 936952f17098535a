#!/usr/bin/env bash
# qrun against llama.cpp, side by side on this machine: the synthetic TinyLlama-1.1B
# checkpoint (or with -m mixtral a synthetic Mixtral of eight TinyLlama FFNs per layer,
# bench/synth_moe.py) as qrun q4/q8/f16 and llama.cpp Q4_0/Q8_0/F16, llama-bench and e2e_bench
# alternating (which goes first swaps every round), then one table of ranges over the
# rounds with the ratios. Speed claims in the README come from this script's output.
#
#   bench/compare_llamacpp.sh [-m tinyllama|mixtral] [-w WORKDIR] [-r ROUNDS] [-t 1,2] [-y q4,q8,f16,q4m,q4n,q5,q5m,q6,q3,q3m,q2k,q2m] [-p 512] [-n 128] [-R REPS] [-P] [-B]
#
# Both engines run with their defaults for this CPU: an OPENBLAS_CORETYPE in the
# environment (which forces OpenBLAS's kernels for qrun's float prompts; the development
# VM sets Haswell, 0.65x the AVX-512 speed on its Zen 5) is unset unless -B keeps it.
# -P loads both engines' weights into private memory (llama-bench -mmp 0, e2e_bench
# --no-mmap): for machines whose page cache cannot hold the files (a VM that caps it
# re-reads a mapped model from disk during the run, for both engines alike).
# WORKDIR (default /tmp/qrun-compare) keeps the checkpoint, GGUFs and qrun files between
# runs; it must be outside the repository. Needs a Release build in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
shared=$(cd "$root/../shared" && pwd)
work=/tmp/qrun-compare rounds=2 threads=1,2 types=q4,q8,f16 n_prompt=512 n_gen=128 reps=3
llama_load=() qrun_load=() keep_blas_core=0 model=tinyllama
while getopts "m:w:r:t:y:p:n:R:PB" opt; do
  case $opt in
    m) model=$OPTARG ;;
    w) work=$OPTARG ;; r) rounds=$OPTARG ;; t) threads=$OPTARG ;; y) types=$OPTARG ;;
    p) n_prompt=$OPTARG ;; n) n_gen=$OPTARG ;; R) reps=$OPTARG ;;
    P) llama_load=(-mmp 0) qrun_load=(--no-mmap) ;;
    B) keep_blas_core=1 ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
  esac
done
llama=$shared/tools/llamacpp/bin/llama-bench
if [ -n "${OPENBLAS_CORETYPE:-}" ] && [ $keep_blas_core = 0 ]; then
  echo "compare_llamacpp: unsetting OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE (OpenBLAS picks its kernels for this CPU; -B keeps it)"
  unset OPENBLAS_CORETYPE
fi
for f in "$llama" build/bin/e2e_bench build/bin/qconvert; do
  [ -x "$f" ] || { echo "compare_llamacpp: $f missing (build qrun first: ./scripts/build.sh)" >&2; exit 1; }
done
mkdir -p "$work"
hf=$work/$model-hf
if [ ! -f "$hf/config.json" ]; then
  echo "== synthetic $model checkpoint -> $hf"
  case $model in
    tinyllama) /usr/bin/python3 "$shared/tools/synth_hf.py" --preset tinyllama-1.1b --tokenizer-dir "$shared/tokenizers/llama2" "$hf" ;;
    mixtral) /usr/bin/python3 bench/synth_moe.py --preset mixtral-8x1.1b --tokenizer-dir "$shared/tokenizers/llama2" "$hf" ;;
    *) echo "compare_llamacpp: unknown model $model (tinyllama, mixtral)" >&2; exit 2 ;;
  esac
fi
# Each qrun type beside llama.cpp's nearest: same block for q4/q8/q5/q4n/q2k, the mixed
# presets' peers for q4m, q5m, q3m and q2m, Q3_K_S (3.44 bits/weight) for q3 (3.5).
gguf_type() {
  case $1 in
    q4) echo Q4_0 ;; q8) echo Q8_0 ;; f16) echo F16 ;; q4m) echo Q4_K_M ;; q4n) echo IQ4_NL ;; q5) echo Q5_0 ;;
    q5m) echo Q5_K_M ;; q6) echo Q6_K ;; q3) echo Q3_K_S ;; q3m) echo Q3_K_M ;; q2k | q2m) echo Q2_K ;;
    *) echo "unknown type $1 (q4 q8 f16 q4m q4n q5 q5m q6 q3 q3m q2k q2m)" >&2; exit 2 ;;
  esac
}
IFS=, read -ra type_list <<<"$types"
gguf_types=() peers=()
for t in "${type_list[@]}"; do
  gguf_types+=("$(gguf_type "$t")")
  peers+=("$t=$(gguf_type "$t")")
done
echo "== GGUF files (llama.cpp's converter and llama-quantize)"
"$shared/tools/llamacpp/make_gguf.sh" "$hf" "$work/gguf" "$model" "${gguf_types[@]}" >/dev/null
for t in "${type_list[@]}"; do
  [ -f "$work/$model.$t" ] || build/bin/qconvert "$hf" -o "$work/$model.$t" --type "$t" 2>&1 | tail -1
done

results=$work/results.csv
echo "engine,type,round,threads,test,tokens_per_s" >"$results"
run_llama() {  # type round
  "$llama" -m "$work/gguf/$model-$(gguf_type "$1").gguf" -p "$n_prompt" -n "$n_gen" -t "$threads" -r "$reps" -o csv \
    "${llama_load[@]}" 2>/dev/null | /usr/bin/python3 -c '
import csv, sys
for row in csv.DictReader(sys.stdin):
    test = "pp" if row["n_prompt"] != "0" else "tg"
    print("llama.cpp", sys.argv[1], sys.argv[2], row["n_threads"], test, row["avg_ts"], sep=",")' "$1" "$2" >>"$results"
}
run_qrun() {  # type round
  build/bin/e2e_bench -m "$work/$model.$1" -p "$n_prompt" -n "$n_gen" -t "$threads" -r "$reps" -o csv "${qrun_load[@]}" \
    | tee -a "$work/e2e_bench.log" | /usr/bin/python3 -c '
import csv, sys
rows = csv.DictReader(l for l in sys.stdin if not l.startswith("#"))
for row in rows:
    for test in ("pp", "tg"):
        print("qrun", sys.argv[1], sys.argv[2], row["threads"], test, row[test + "_ts"], sep=",")
    fraction = float(row["tg_weight_gbps"]) / float(row["read_gbps"])
    print("qrun", sys.argv[1], sys.argv[2], row["threads"], "tg_fraction", f"{fraction:.3f}", sep=",")
' "$1" "$2" >>"$results"
}
: >"$work/e2e_bench.log"
for ((round = 1; round <= rounds; round++)); do
  for t in "${type_list[@]}"; do
    echo "== round $round/$rounds: $t"
    if ((round % 2)); then run_llama "$t" "$round"; run_qrun "$t" "$round"
    else run_qrun "$t" "$round"; run_llama "$t" "$round"; fi
  done
done

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
family=$(grep -m1 "^cpu family" /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
cpu_model=$(grep -m1 "^model[[:space:]]*:" /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
echo
echo "$model: $(date -u '+%Y-%m-%d %H:%M UTC'), $cpu (family $family, model $cpu_model), $(nproc) CPUs; $rounds rounds, $reps reps each; weights $([ ${#qrun_load[@]} -gt 0 ] && echo "in private memory (-P)" || echo "mapped")"
grep -m1 "^# CPU" "$work/e2e_bench.log" | sed 's/^# /qrun: /'
/usr/bin/python3 - "$results" "$n_prompt" "$n_gen" "${peers[@]}" <<'EOF'
import collections, csv, sys
path, n_prompt, n_gen = sys.argv[1], sys.argv[2], sys.argv[3]
peer = dict(p.split("=") for p in sys.argv[4:])
v = collections.defaultdict(list)
for r in csv.DictReader(open(path)):
    v[(r["engine"], r["type"], int(r["threads"]), r["test"])].append(float(r["tokens_per_s"]))
def rng(xs, fmt="{:.1f}"):
    return fmt.format(min(xs)) if min(xs) == max(xs) else (fmt + "-" + fmt).format(min(xs), max(xs))
def ratio(a, b):  # range of per-round ratios
    rs = [x / y for x, y in zip(a, b)]
    return rng(rs, "{:.2f}") + "x"
print(f"| qrun type vs llama.cpp | threads | qrun pp{n_prompt} | llama.cpp pp{n_prompt} | pp ratio "
      f"| qrun tg{n_gen} | llama.cpp tg{n_gen} | tg ratio | qrun tg / read bandwidth |")
print("|---|---|---|---|---|---|---|---|---|")
for (engine, t, th, test) in sorted(k for k in v if k[0] == "qrun" and k[3] == "pp"):
    qp, lp = v[("qrun", t, th, "pp")], v[("llama.cpp", t, th, "pp")]
    qt, lt = v[("qrun", t, th, "tg")], v[("llama.cpp", t, th, "tg")]
    fr = v[("qrun", t, th, "tg_fraction")]
    print(f"| {t} vs {peer[t]} | {th} | {rng(qp)} | {rng(lp)} | {ratio(qp, lp)} | {rng(qt)} | {rng(lt)} "
          f"| {ratio(qt, lt)} | {rng(fr, '{:.2f}')} |")
EOF
