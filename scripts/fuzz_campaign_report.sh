#!/usr/bin/env bash
# Prints one row per target of a fuzz campaign (fuzz/campaign.sh) from its logs in OUT,
# finished or still running: state, wall time, executions, executions per second,
# coverage (libFuzzer's cov: edges and ft: features), corpus (inputs/bytes, as libFuzzer
# last reported it) and findings (reproducers in OUT/artifacts/<target>/; slow-unit-*
# files, inputs that took over 10 s, are counted apart: they are not failures).
#   scripts/fuzz_campaign_report.sh OUT
set -euo pipefail
out=${1:?usage: scripts/fuzz_campaign_report.sh OUT}
now=$(date +%s)
printf '%-16s %-12s %8s %11s %7s %6s %7s %12s  %s\n' target state wall execs exec/s cov ft corpus findings
shopt -s nullglob
logs=("$out"/*.log)
[ ${#logs[@]} -gt 0 ] || { echo "(no logs in $out)"; exit 0; }
for log in "${logs[@]}"; do
  t=$(basename "$log" .log)
  start=$(sed -n 's/^campaign: start \([0-9]*\) .*/\1/p' "$log" | head -n1)
  [ -n "$start" ] || continue
  end=$(sed -n 's/^campaign: end \([0-9]*\) .*/\1/p' "$log" | tail -n1)
  rc=$(sed -n 's/^campaign: end [0-9]* rc=\([0-9]*\).*/\1/p' "$log" | tail -n1)
  if [ -n "$end" ]; then
    state="done rc=$rc"
  elif [ -f "$out/$t.pid" ] && kill -0 "$(cat "$out/$t.pid")" 2>/dev/null; then
    state=running end=$now
  else
    state=stopped end=$(stat -c %Y "$log")
  fi
  wall=$((end - start))
  last=$(grep -E '^#[0-9]+.*cov: [0-9]+' "$log" | tail -n1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  [ -n "$eps" ] || eps=$(sed -n 's/.* exec\/s: \([0-9]*\).*/\1/p' <<<"$last")
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
  arts=() slow=0
  for a in "$out/artifacts/$t"/*; do
    case $(basename "$a") in slow-unit-*) slow=$((slow + 1)) ;; *) arts+=("$a") ;; esac
  done
  if [ ${#arts[@]} -eq 0 ] && ! grep -qE '^==[0-9]+== ?ERROR|runtime error:|deadly signal' "$log"; then
    findings=none
  else
    findings="${#arts[@]} reproducer(s): $(grep -m1 -E '^==[0-9]+== ?ERROR|runtime error:|deadly signal|ERROR: libFuzzer' "$log" || true)"
  fi
  [ $slow -eq 0 ] || findings+=" ($slow slow unit(s), slowest $(sed -n 's/^Slowest unit: \([0-9]*\) s:.*/\1/p' "$log" | tail -n1) s)"
  printf '%-16s %-12s %4dm%02ds %11s %7s %6s %7s %12s  %s\n' "$t" "$state" $((wall / 60)) $((wall % 60)) \
    "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$findings"
done
