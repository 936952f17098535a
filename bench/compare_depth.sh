#!/usr/bin/env bash
# Decode with a long context, qrun against llama.cpp side by side: the same prompt (the
# first CHARS characters of tinyshakespeare, ~2,200 tokens at 7000) into qrun (q4) and
# llama-cli (Q4_0, -fa), then 32 generated tokens; each engine's own "eval time" line
# gives the tokens/s. The engines alternate (which goes first swaps every round), for
# each KV cache type.
# llama-bench of c392e50 has no -d (depth), hence llama-cli.
#
#   bench/compare_depth.sh [-w WORKDIR] [-r ROUNDS] [-t THREADS] [-k f16,q8_0,q4_0] [-c CHARS]
#
# WORKDIR holds what bench/compare_llamacpp.sh made there (tinyllama.q4 and
# gguf/tinyllama-Q4_0.gguf); run that first. An OPENBLAS_CORETYPE is unset, as there.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=$(cd ../shared && pwd)
work=/tmp/qrun-compare rounds=2 threads=2 kv_types=f16,q8_0 chars=7000
while getopts "w:r:t:k:c:" opt; do
  case $opt in
    w) work=$OPTARG ;; r) rounds=$OPTARG ;; t) threads=$OPTARG ;; k) kv_types=$OPTARG ;; c) chars=$OPTARG ;;
    *) sed -n '2,11p' "$0"; exit 2 ;;
  esac
done
unset OPENBLAS_CORETYPE
cli=$shared/tools/llamacpp/bin/llama-cli
for f in "$cli" build/bin/qrun "$work/tinyllama.q4" "$work/gguf/tinyllama-Q4_0.gguf"; do
  [ -e "$f" ] || { echo "compare_depth: $f missing (build qrun, then run bench/compare_llamacpp.sh -w $work)" >&2; exit 1; }
done
prompt=$(mktemp)
trap 'rm -f "$prompt"' EXIT
head -c "$chars" "$shared/corpus/tinyshakespeare.txt" > "$prompt"
rate() { sed -n 's/.*per token, *\([0-9.]*\) tokens per second.*/\1/p' | tail -1; }
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) (family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs)); $(date -u '+%Y-%m-%d %H:%M UTC'); $threads threads; prompt $chars characters"
echo "| round | KV cache | qrun tg32 | llama.cpp tg32 | ratio |"
echo "|---|---|---|---|---|"
for round in $(seq "$rounds"); do
  for kv in ${kv_types//,/ }; do
    run_qrun() {
      q=$(build/bin/qrun -m "$work/tinyllama.q4" -f "$prompt" -n 32 --ignore-eos --temp 0 -t "$threads" -c 4096 \
            -ctk "$kv" -ctv "$kv" 2>&1 >/dev/null | grep "eval time" | grep -v prompt | rate)
    }
    run_llama() {
      l=$("$cli" -m "$work/gguf/tinyllama-Q4_0.gguf" -f "$prompt" -n 32 --ignore-eos --temp 0 -t "$threads" -c 4096 \
            -fa -ctk "$kv" -ctv "$kv" -no-cnv --simple-io 2>&1 </dev/null | grep "llama_perf_context_print: *eval time" | rate)
    }
    if [ $((round % 2)) = 1 ]; then run_qrun; run_llama; else run_llama; run_qrun; fi  # who goes first swaps
    echo "| $round | $kv | $q | $l | $(awk -v a="$q" -v b="$l" 'BEGIN { if (b > 0) printf "%.2fx", a / b }') |"
  done
done
