#!/usr/bin/env bash
# Memory modes side by side: tokens/s, peak RSS and bytes read from disk per token for
#   mmap (default), --no-mmap, --mem-budget (fits), and under a cgroup memory limit
#   smaller than the model: plain mmap vs --mem-budget.
# Usage: bench/memory_bench.sh MODEL LIMIT_MIB BUDGET_MIB [TOKENS]
# Needs root for the cgroup rows (cgroup v1 memory controller or v2 memory.max).
set -euo pipefail
model=$1; limit_mib=$2; budget_mib=$3; tokens=${4:-32}
qrun=${QRUN:-$(dirname "$0")/../build/bin/qrun}
args=(-m "$model" -p "Once upon a time" -n "$tokens" --temp 0 --ignore-eos -c 512 --verbose)

cg_dir=""
make_cgroup() {
  local v1 mine
  if grep -q memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    mine=$(awk -F: '$1=="0"{print $3}' /proc/self/cgroup)
    cg_dir=/sys/fs/cgroup$mine/qrun-bench-$$
    mkdir "$cg_dir" && echo $((limit_mib << 20)) > "$cg_dir/memory.max"
  else
    v1=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)
    cg_dir=/sys/fs/cgroup/memory$v1/qrun-bench-$$
    mkdir "$cg_dir" && echo $((limit_mib << 20)) > "$cg_dir/memory.limit_in_bytes"
  fi
}
drop_cache() { sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

row() {  # name, cgroup(0/1), extra args...
  local name=$1 in_cg=$2; shift 2
  drop_cache
  local out
  if [ "$in_cg" = 1 ]; then
    out=$(sh -c "echo \$\$ > $cg_dir/cgroup.procs && exec $qrun $(printf '%q ' "${args[@]}" "$@")" 2>&1 >/dev/null) || { echo "| $name | failed |"; return; }
  else
    out=$("$qrun" "${args[@]}" "$@" 2>&1 >/dev/null)
  fi
  local tps rss per_tok predicted
  tps=$(sed -n 's/.*eval time.*(.*, *\([0-9.]*\) tokens per second).*/\1/p' <<<"$out" | tail -1)
  rss=$(sed -n 's/.*peak RSS \([0-9.]*\) MiB.*/\1/p' <<<"$out")
  per_tok=$(sed -n 's/.*(\([0-9.]*\) MiB per token).*/\1/p' <<<"$out")
  predicted=$(sed -n 's/.*predicted peak memory \([0-9.]*\) MiB.*/\1/p' <<<"$out")
  echo "| $name | ${tps:-?} | ${rss:-?} | ${predicted:-?} | ${per_tok:--} |"
}

echo "model: $model ($(($(stat -c %s "$model") >> 20)) MiB), cgroup limit ${limit_mib} MiB, budget ${budget_mib} MiB"
echo "| mode | gen tok/s | peak RSS MiB | predicted MiB | MiB read/token |"
echo "|---|---|---|---|---|"
row "mmap" 0
row "--no-mmap" 0 --no-mmap
row "--mem-budget 100G (fits)" 0 --mem-budget 100G
if make_cgroup 2>/dev/null; then
  row "cgroup ${limit_mib}M: mmap" 1
  row "cgroup ${limit_mib}M: --mem-budget ${budget_mib}M" 1 --mem-budget "${budget_mib}M"
  rmdir "$cg_dir"
else
  echo "(no cgroup rows: cannot create a memory cgroup here)"
fi
