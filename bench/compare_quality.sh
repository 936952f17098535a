#!/usr/bin/env bash
# qrun's quantization quality beside llama.cpp's, measured side by side in the same run: for each
# model, each qrun type's KLD, same top-1 and perplexity (qppl, against qrun's own f16) next to the
# llama.cpp type nearest in bits per weight (llama-perplexity, against llama.cpp's own F16), one
# markdown table per model on stdout and in WORKDIR/quality.md. The README's quality table comes from it.
#
#   bench/compare_quality.sh [-w WORKDIR] [-m tinyllama,smollm,stories] [-f TEXT] [-n CHUNKS] [-t THREADS]
#                            [-q QRUN_TYPES] [-l LLAMA_TYPES] [-C CALIB_TEXT]
#
#   -w  scratch folder outside the repository (default /tmp/qrun-compare, shared with compare_llamacpp.sh):
#       synthetic checkpoints, GGUF files and qrun files are kept there and reused between runs
#   -m  models: tinyllama (synthetic TinyLlama-1.1B shape), smollm (synthetic SmolLM-135M shape),
#       stories (the real stories260K in ../shared/models); default all three
#   -f  text to score (default ../shared/corpus/tinyshakespeare.txt); -n windows of 512 tokens (default 6)
#   -t  threads for every tool (default 2)
#   -q  qrun types (default q8,q6,q5m,q5,q4m,q4n,q4,q3m,q3; f16 is always run, as the base)
#   -l  llama.cpp types (default Q8_0,Q6_K,Q5_K_M,Q5_0,Q4_K_M,Q4_0,IQ4_NL,Q3_K_M; F16 always run)
#   -C  calibration text for qrun's quantized types (qconvert --calibrate); must not be the scored text.
#       llama.cpp's files get no imatrix, so the table then compares calibrated qrun with plain llama.cpp.
#
# Time, 2 shared cores: the default run took 1 h 57 min with no qrun files yet (tinyllama: qconvert 54 min,
# llama-quantize 8 min, perplexity 38 min; smollm 15 min; stories 1 min). Files already in WORKDIR are reused
# (qrun files only while newer than qconvert), leaving mostly the perplexity runs; -n 3 halves those, and
# -m smollm,stories takes about 15 min. Run it under `nice -n 19` on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
shared=$(cd "$root/../shared" && pwd)
work=/tmp/qrun-compare models=tinyllama,smollm,stories text=$shared/corpus/tinyshakespeare.txt chunks=6 threads=2
qtypes=q8,q6,q5m,q5,q4m,q4n,q4,q3m,q3 ltypes=Q8_0,Q6_K,Q5_K_M,Q5_0,Q4_K_M,Q4_0,IQ4_NL,Q3_K_M calib=
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while getopts "w:m:f:n:t:q:l:C:h" opt; do
  case $opt in
    w) work=$OPTARG ;; m) models=$OPTARG ;; f) text=$OPTARG ;; n) chunks=$OPTARG ;; t) threads=$OPTARG ;;
    q) qtypes=$OPTARG ;; l) ltypes=$OPTARG ;; C) calib=$OPTARG ;;
    h) usage; exit 0 ;; *) usage >&2; exit 2 ;;
  esac
done
[ $OPTIND -gt $# ] || { echo "compare_quality: unexpected argument '${*:$OPTIND:1}'" >&2; usage >&2; exit 2; }
die() { echo "compare_quality: $*" >&2; exit 1; }
llamacpp=$shared/tools/llamacpp
for f in build/bin/qconvert build/bin/qppl "$llamacpp/bin/llama-perplexity" "$llamacpp/bin/llama-quantize" "$llamacpp/make_gguf.sh"; do
  [ -x "$f" ] || die "$f missing (build qrun first: cmake --build build --target qconvert qppl)"
done
[ -f "$text" ] || die "text $text not found"
text=$(realpath "$text")
if [ -n "$calib" ]; then
  [ -f "$calib" ] || die "calibration text $calib not found"
  calib=$(realpath "$calib")
  if [ "$calib" = "$text" ] || cmp -s "$calib" "$text"; then die "-C $calib is the scored text; calibrate on another one"; fi
  build/bin/qconvert --help | grep -q -- --calibrate || die "this qconvert has no --calibrate"
fi
case $work in "$root"|"$root"/*) die "WORKDIR $work is inside the repository; use a folder outside it" ;; esac
mkdir -p "$work/bin" "$work/gguf" "$work/quality-logs"
work=$(realpath "$work")
logs=$work/quality-logs
IFS=, read -ra qtype_list <<<"${qtypes//f16/}"   # f16 and F16 are always run, first
IFS=, read -ra ltype_list <<<"${ltypes//F16/}"
IFS=, read -ra model_list <<<"$models"
for model in "${model_list[@]}"; do
  case $model in tinyllama|smollm|stories) ;; *) die "unknown model '$model' (tinyllama, smollm, stories)" ;; esac
done

# The other binaries may be rebuilt while this runs: use one copy of each for the whole run (mtime kept,
# so a qrun file is reused only when it is newer than the qconvert that would write it).
cp -p build/bin/qconvert build/bin/qppl "$work/bin/"
qconvert=$work/bin/qconvert qppl=$work/bin/qppl
start=$SECONDS
say() { printf '[%4ds] %s\n' $((SECONDS - start)) "$*" >&2; }
step() {  # LOG DESCRIPTION CMD...: run CMD with its output in LOG; on failure name the step and show the log's tail
  local log=$1 what=$2; shift 2
  if ! "$@" >"$log" 2>&1 </dev/null; then
    echo "compare_quality: FAILED: $what" >&2
    echo "  command: $*" >&2
    tail -n 8 "$log" | sed 's/^/  | /' >&2
    exit 1
  fi
}

hf_dir() {  # model -> its Hugging Face folder (synthetic ones are written on first use)
  local preset
  case $1 in
    tinyllama) preset=tinyllama-1.1b ;;
    smollm) preset=smollm-135m ;;
    stories) echo "$shared/models/stories260K"; return ;;
    *) die "unknown model '$1' (tinyllama, smollm, stories)" ;;
  esac
  local hf=$work/$1-hf
  if [ ! -f "$hf/config.json" ]; then
    say "$1: synthetic $preset checkpoint -> $hf"
    step "$logs/$1-synth.log" "synth_hf.py --preset $preset" \
      /usr/bin/python3 "$shared/tools/synth_hf.py" --preset "$preset" --tokenizer-dir "$shared/tokenizers/llama2" "$hf"
  fi
  echo "$hf"
}
describe() {
  case $1 in
    tinyllama) echo "synthetic TinyLlama-1.1B shape (random weights shaped like trained ones, ../shared/tools/synth_hf.py)" ;;
    smollm) echo "synthetic SmolLM-135M shape (random weights, synth_hf.py; Llama 2 tokenizer, tied embeddings)" ;;
    stories) echo "stories260K (real trained TinyStories model, ../shared/models/stories260K)" ;;
  esac
}

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
family=$(grep -m1 "^cpu family" /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
cpumodel=$(grep -m1 "^model[[:space:]]*:" /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
llama_commit=$("$llamacpp/bin/llama-perplexity" --version 2>&1 | sed -n 's/^version: .*(\(.*\))$/\1/p')
[ -n "$llama_commit" ] || llama_commit=$(sed -n 's/.*llama.cpp at commit \([0-9a-f]*\).*/\1/p' "$llamacpp/README.md" | head -1)
qrun_commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- . ':(exclude)bench' || qrun_commit="$qrun_commit with uncommitted changes"
calib_note=
[ -z "$calib" ] || calib_note="; qrun quantized types calibrated on $(basename "$calib") (qconvert --calibrate), llama.cpp's without imatrix"
md=$work/quality.md
{
  echo "## Quantization quality, qrun beside llama.cpp"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $cpu (family $family, model $cpumodel), $(nproc) CPUs, $threads threads;" \
       "qrun $qrun_commit, llama.cpp $llama_commit; text $(basename "$text"), $chunks windows of 512 tokens" \
       "(the second half of each scored)$calib_note."
} >"$md"
cat "$md"

for model in "${model_list[@]}"; do
  hf=$(hf_dir "$model")
  results=$logs/$model.tsv
  : >"$results"
  notes=()

  # qrun: f16 (the base) and each type, converted by the copied qconvert
  for t in f16 "${qtype_list[@]}"; do
    [ -n "$t" ] || continue
    out=$work/$model.$t cal=()
    if [ -n "$calib" ] && [ "$t" != f16 ] && [ "$t" != f32 ]; then
      out=$work/$model.$t.cal-$(basename "$calib" .txt) cal=(--calibrate "$calib")
    fi
    if [ ! -f "$out" ] || [ ! "$out" -nt "$qconvert" ]; then
      say "$model: qconvert --type $t ${cal[*]}"
      step "$logs/$model-qconvert-$t.log" "qconvert $model --type $t" \
        "$qconvert" "$hf" -o "$out" --type "$t" -t "$threads" "${cal[@]}"
    fi
    step "$logs/$model-qrun-$t.info" "qconvert --info $out" "$qconvert" --info "$out"
    echo -e "qrun\t$t\tok\t$out\t$logs/$model-qrun-$t.ppl.log\t$logs/$model-qrun-$t.info" >>"$results"
  done
  # llama.cpp: F16 with its converter, then each type with llama-quantize (make_gguf.sh reuses what exists)
  say "$model: GGUF F16 (make_gguf.sh)"
  step "$logs/$model-make_gguf-F16.log" "make_gguf.sh $model F16" "$llamacpp/make_gguf.sh" "$hf" "$work/gguf" "$model" F16
  echo -e "llama\tF16\tok\t$work/gguf/$model-F16.gguf\t$logs/$model-llama-F16.ppl.log\t-" >>"$results"
  refused=()
  for t in "${ltype_list[@]}"; do
    [ -n "$t" ] || continue
    gguf=$work/gguf/$model-$t.gguf
    # a refused llama-quantize leaves a partial file behind, which make_gguf.sh would take as done
    if [ -f "$gguf" ] && grep -q "failed to quantize" "$work/gguf/$model-$t.log" 2>/dev/null; then rm -f "$gguf"; fi
    [ -f "$gguf" ] || say "$model: llama-quantize $t"
    if ! "$llamacpp/make_gguf.sh" "$hf" "$work/gguf" "$model" "$t" >"$logs/$model-make_gguf-$t.log" 2>&1; then
      # llama.cpp refuses types whose blocks do not divide the rows (stories260K: FFN 172 wide): say so, go on
      if grep -q "not divisible by" "$work/gguf/$model-$t.log" 2>/dev/null; then
        rm -f "$gguf"
        refused+=("$t")
        echo -e "llama\t$t\trefused\t-\t-\t$work/gguf/$model-$t.log" >>"$results"
        continue
      fi
      echo "compare_quality: FAILED: make_gguf.sh $model $t (llama-quantize)" >&2
      tail -n 8 "$logs/$model-make_gguf-$t.log" | sed 's/^/  | /' >&2
      exit 1
    fi
    echo -e "llama\t$t\tok\t$gguf\t$logs/$model-llama-$t.ppl.log\t$work/gguf/$model-$t.log" >>"$results"
  done
  [ ${#refused[@]} -eq 0 ] ||
    notes+=("llama.cpp could not make ${refused[*]} for this model (llama-quantize refuses tensors whose rows its blocks do not divide); those rows show no llama.cpp figures.")

  # perplexity: each tool's F16 first (it writes the KLD base), then its types against it
  qbase=$logs/$model-qrun.kld lbase=$logs/$model-llama.kld
  while IFS=$'\t' read -r engine t status file log _; do
    [ "$status" = ok ] || continue
    if [ "$engine" = qrun ]; then
      args=(-m "$file" -f "$text" -c 512 --chunks "$chunks" -t "$threads")
      if [ "$t" = f16 ]; then args+=(--kl-divergence-base "$qbase"); else args+=(--kl-divergence "$qbase"); fi
      say "$model: qppl $t"
      step "$log" "qppl $model $t" "$qppl" "${args[@]}"
    else
      args=(-m "$file" -f "$text" -c 512 -b 512 --chunks "$chunks" -t "$threads" --kl-divergence-base "$lbase")
      [ "$t" = F16 ] || args+=(--kl-divergence)
      say "$model: llama-perplexity $t"
      step "$log" "llama-perplexity $model $t" "$llamacpp/bin/llama-perplexity" "${args[@]}"
    fi
  done <"$results"
  rm -f "$qbase" "$lbase"

  echo >>"$md"
  GGUF_PY=$llamacpp/convert /usr/bin/python3 bench/quality_table.py "$results" "$model: $(describe "$model")" \
    "The f16 / F16 row is each tool's own base (same weights; each tool's tokenizer and arithmetic)." "${notes[@]}" \
    >"$logs/$model.md" || die "quality_table.py failed on $results"
  cat "$logs/$model.md" >>"$md"
  echo
  cat "$logs/$model.md"
  say "$model done"
done
say "all done; table in $md"
