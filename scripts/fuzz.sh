#!/usr/bin/env bash
# Fuzzes every parser of untrusted input (fuzz/: model file, safetensors header,
# config.json, tokenizer.json, tokenizer_config.json, tokenizer.model, chat template,
# GGUF, server request, option texts, JSON-mode recognizer) with libFuzzer under ASan and UBSan, SECONDS
# seconds each (default 30):
#   scripts/fuzz.sh [SECONDS]
# Installs clang-14 and libFuzzer when missing (idempotent), configures and builds
# build-fuzz/ (clang-14, -DQRUN_FUZZ=ON -DQRUN_SANITIZE=ON), builds the seed corpora
# from ../shared into build-fuzz/corpus/<target>/ (which then keeps what the fuzzer
# found, for the next run), and runs the targets one after another. Reproducers go
# to build-fuzz/artifacts/<target>/, logs to build-fuzz/logs/<target>.log. Prints each
# target's executions, coverage (libFuzzer's cov: edges and ft: features) and result;
# exits non-zero if any target found a crash, leak, timeout or OOM.
# One target by hand: build-fuzz/fuzz/fuzz_<target> -dict=fuzz/<target>.dict build-fuzz/corpus/<target>
# Replay a reproducer:  build-fuzz/fuzz/fuzz_<target> build-fuzz/artifacts/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
targets=(model_file safetensors lora_adapter hf_config tokenizer_json tokenizer_model chat_template gguf_reader server_request option_text tokenizer_config json_prefix json_schema gbnf)

./scripts/install_deps.sh
packages=(clang-14 libclang-rt-14-dev libfuzzer-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

start=$SECONDS
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQRUN_FUZZ=ON \
  -DQRUN_SANITIZE=ON -DQRUN_BUILD_TESTS=OFF -DQRUN_BUILD_BENCH=OFF -DQRUN_CUDA=OFF >/dev/null
build_targets=(fuzz_all)
# The seeds' model files come from an already built qconvert: build/bin/ (scripts/build.sh)
# or build-asan/bin/ (scripts/sanitize.sh), else from the fuzz build's own (slower to
# build and run under ASan, same files).
qconvert=
for q in build/bin/qconvert build-asan/bin/qconvert; do
  if [ -x "$q" ]; then qconvert=$q; break; fi
done
if [ -z "$qconvert" ]; then
  qconvert=build-fuzz/bin/qconvert
  build_targets+=(qconvert_tool)
fi
cmake --build build-fuzz -j"$(nproc)" --target "${build_targets[@]}"
build_s=$((SECONDS - start))

start=$SECONDS
ASAN_OPTIONS=detect_leaks=0 fuzz/make_corpus.sh "$qconvert" build-fuzz/corpus
corpus_s=$((SECONDS - start))

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
mkdir -p build-fuzz/logs
rows=() failed=0
start=$SECONDS
for t in "${targets[@]}"; do
  art=build-fuzz/artifacts/$t
  log=build-fuzz/logs/$t.log
  mkdir -p "$art"
  marker=$(mktemp)
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=("-dict=fuzz/$t.dict")
  echo "=== fuzz: $t (${seconds}s)"
  rc=0
  # -timeout=60: a chat template that runs up to the renderer's limit of 10^7 steps takes
  # about 1 s in a release build but 15-18 s under ASan, UBSan and coverage; 60 s leaves
  # room for a loaded machine. A unit over 10 s is also written as slow-unit-*, which is
  # not a failure.
  "build-fuzz/fuzz/fuzz_$t" "${dict[@]}" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$art/" "build-fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  last=$(grep -E '^#[0-9]+.*cov: [0-9]+' "$log" | tail -n1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
  found=$(find "$art" -type f -newer "$marker" ! -name 'slow-unit-*' | sort)
  rm -f "$marker"
  if [ $rc -eq 0 ] && [ -z "$found" ]; then
    result="no crash"
  else
    result="FOUND (exit $rc): ${found:-see $log}"
    failed=$((failed + 1))
    grep -m1 -E '^==[0-9]+==ERROR|runtime error|deadly signal|ERROR: libFuzzer' "$log" || true
    tail -n 40 "$log"
  fi
  rows+=("$(printf '  %-16s %10s %7s %7s %10s  %s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")")
done
fuzz_s=$((SECONDS - start))

echo "=== fuzz: results (${seconds}s each; logs in build-fuzz/logs/)"
printf '  %-16s %10s %7s %7s %10s  %s\n' target execs cov ft corpus result
printf '%s\n' "${rows[@]}"
echo "fuzz: build ${build_s}s, corpus ${corpus_s}s, fuzzing ${fuzz_s}s"
echo "fuzz: $((${#targets[@]} - failed)) passed, $failed failed"
[ $failed -eq 0 ]
