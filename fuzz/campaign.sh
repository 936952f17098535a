#!/usr/bin/env bash
# A long fuzz campaign: every libFuzzer target for SECONDS or RUNS executions, whichever
# comes first (default 10,000,000), JOBS targets at a time (default 2). Runs what
# scripts/fuzz.sh built (run it first, e.g. `scripts/fuzz.sh 5`): the targets in
# $BUILD/fuzz/ (default build-fuzz), fuzz/<target>.dict, and the corpora in
# $BUILD/corpus/<target>/, which keep what the campaign finds. Writes to OUT/:
#   <target>.log          libFuzzer's log, framed by "campaign: start/end" lines
#   <target>.pid          the fuzzer's process id while it runs
#   artifacts/<target>/   reproducers (crash-*, leak-*, timeout-*, oom-*)
# scripts/fuzz_campaign_report.sh OUT prints the table, also while it runs.
#   nohup nice -n 19 fuzz/campaign.sh 2400 /tmp/fuzz-campaign >/tmp/fuzz-campaign.out 2>&1 &
# The timeout per input is 120 s (TIMEOUT=SECONDS to change), twice fuzz.sh's: the
# campaign runs niced beside other work, and libFuzzer's timeout counts wall time, so a
# fuzzer paused (kill -STOP) for longer reports a timeout that is not one. Units over 10 s are also written to
# artifacts/<target>/slow-unit-*: not failures (the report counts them apart).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: fuzz/campaign.sh SECONDS OUT [RUNS]}
out=${2:?usage: fuzz/campaign.sh SECONDS OUT [RUNS]}
runs=${3:-10000000}
build=${BUILD:-build-fuzz}
jobs=${JOBS:-2}
# The slowest targets first, so that they pair with each other.
targets=(${TARGETS:-model_file chat_template tokenizer_model tokenizer_json safetensors hf_config})

for t in "${targets[@]}"; do
  [ -x "$build/fuzz/fuzz_$t" ] && [ -d "$build/corpus/$t" ] ||
    { echo "campaign: no $build/fuzz/fuzz_$t or $build/corpus/$t: run scripts/fuzz.sh first" >&2; exit 2; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

run_one() {
  local t=$1 log=$out/$1.log art=$out/artifacts/$1 dict=() rc=0
  mkdir -p "$art"
  [ -f "fuzz/$t.dict" ] && dict=("-dict=fuzz/$t.dict")
  echo "campaign: start $(date +%s) $t $(git rev-parse --short HEAD 2>/dev/null || echo '?') seconds=$seconds runs=$runs" >"$log"
  "$build/fuzz/fuzz_$t" "${dict[@]}" -max_total_time="$seconds" -runs="$runs" -timeout="${TIMEOUT:-120}" \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" "$build/corpus/$t" >>"$log" 2>&1 &
  echo $! >"$out/$t.pid"
  wait $! || rc=$?
  rm -f "$out/$t.pid"
  echo "campaign: end $(date +%s) rc=$rc" >>"$log"
}

echo "campaign: $$ in $PWD: ${targets[*]}, ${seconds}s or $runs runs each, $jobs at a time, logs in $out"
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "$t" &
  sleep 1
done
wait
echo "campaign: done"
scripts/fuzz_campaign_report.sh "$out"
