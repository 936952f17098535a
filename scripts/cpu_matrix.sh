#!/usr/bin/env bash
# Runs the kernel, quant, file-format, tokenizer and stories260K golden tests on CPUs this
# machine is not, under qemu-user:
#   x86-64 Haswell (AVX2, no AVX-512): the build/ test binaries under qemu-x86_64 -cpu Haswell
#   aarch64 NEON and SVE/SVE2: a cross build in build-aarch64/ under qemu-aarch64
# Each leg first checks which SIMD target qrun's dispatch picked there. Installs what it
# needs (idempotent), prints each leg's time and exits non-zero if any leg failed. The
# emulated legs run two at a time (a qemu run keeps one core busy), each into its own log,
# printed whole when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# The tests each leg runs: all of test_simd (every compiled target the CPU supports,
# against the scalar reference) and test_quant; the file format tests (test_src_format),
# the golden tests of test_src_runtime; test_src_tokenizer except the tests that spawn the
# tools (Qtok.*, ToolsRefuse*,
# MergesAcrossWords*: they run natively in the main suite; the emulator
# is not registered with binfmt_misc, so a spawned ARM binary would not run).
TESTS=(
  "test_simd"
  "test_quant"
  "test_src_format --gtest_filter=ModelFile.*:CorruptModelFile.*"
  "test_src_runtime --gtest_filter=GoldenStories.*"
  "test_src_tokenizer --gtest_filter=-Qtok.*:TokenizerBytePieces.ToolsRefuse*:TokenizerSpaceInsidePiece.MergesAcrossWords*"
)

install_packages() {
  local host=(qemu-user g++-aarch64-linux-gnu)
  local arm64=(libhwy-dev libgtest-dev libcpuinfo0 libopenblas-dev libxxhash-dev libpcre2-dev
    libutf8proc-dev)
  local missing=() p
  for p in "${host[@]}" "${arm64[@]/%/:arm64}" libcpuinfo-dev:arm64; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "cpu_matrix: all packages present"
    return 0
  fi
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Multi-Arch: same packages of both architectures must have one version, so apt may
  # also upgrade a few amd64 libraries to the version of their arm64 twins.
  $SUDO apt-get install -y -qq --no-install-recommends "${host[@]}" "${arm64[@]/%/:arm64}"
  # libcpuinfo-dev cannot be co-installed as it is: both architectures ship
  # /usr/lib/cmake/cpuinfo/cpuinfo-targets-none.cmake, which names the library's
  # multiarch path. qrun finds cpuinfo through pkg-config (multiarch .pc files), so the
  # arm64 package goes in without that file and the amd64 one keeps it.
  $SUDO apt-get install -y -qq --no-install-recommends \
    -o DPkg::Options::=--path-exclude=/usr/lib/cmake/cpuinfo/cpuinfo-targets-none.cmake libcpuinfo-dev:arm64
}

build_aarch64() {
  cmake -S . -B build-aarch64 --no-warn-unused-cli -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
    -DCMAKE_BUILD_TYPE=Release -DQRUN_BUILD_BENCH=OFF -DQRUN_CUDA=OFF >/dev/null
  cmake --build build-aarch64 -j"$(nproc)" --target test_simd test_quant test_src_format test_src_runtime test_src_tokenizer \
    qrun_tool qconvert_tool
}

# run_tests BUILD_DIR EXPECTED_TARGET EMULATOR...: converts stories260K and generates a
# few tokens with that build's tools, checks that qrun's timing block names the
# expected SIMD target, then runs the tests, all under the emulator.
run_tests() {
  local dir=$1 want=$2
  shift 2
  local tmp out got t bin args
  tmp=$(mktemp -d)
  out=$("$@" "$dir/bin/qconvert" ../shared/models/stories260K -o "$tmp/stories260K.q8" --type q8 2>&1 &&
    "$@" "$dir/bin/qrun" -m "$tmp/stories260K.q8" -p "Once upon a time" -n 8 --temp 0 2>&1) || true
  rm -rf "$tmp"
  got=$(sed -n 's/.*SIMD \([A-Za-z0-9_+]*\),.*/\1/p' <<<"$out")
  echo "cpu_matrix: SIMD target chosen: ${got:-none} (expected $want)"
  if [ "$got" != "$want" ]; then
    echo "$out"
    return 1
  fi
  local rc=0  # every binary runs, so one leg shows all its failures
  for t in "${TESTS[@]}"; do
    read -r bin args <<<"$t"
    echo "cpu_matrix: $* $dir/tests/$bin $args"
    # shellcheck disable=SC2086
    "$@" "$dir/tests/$bin" $args --gtest_brief=1 || rc=1
  done
  return $rc
}

run_x86() {
  # Haswell less the features TCG cannot emulate, which it would warn about at every start.
  run_tests build AVX2 qemu-x86_64 -cpu Haswell,-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm
}

build_x86() {
  # build/ as scripts/test.sh configured and built it (this only builds what is missing).
  [ -f build/CMakeCache.txt ] || ./scripts/build.sh
  cmake --build build -j"$(nproc)" --target test_simd test_quant test_src_format test_src_runtime test_src_tokenizer qrun_tool qconvert_tool \
    >/dev/null
}

# qemu's default SVE length is 512 bits, where dispatch picks SVE2; the kernels again at
# 128- and 256-bit vectors (sve-default-vector-length in bytes: 16, 32), where it picks
# SVE2_128 and SVE_256.
run_sve_kernels() {
  echo "cpu_matrix: qemu-aarch64 -cpu max,sve-default-vector-length=$1 build-aarch64/tests/test_simd"
  qemu-aarch64 -cpu max,sve-default-vector-length="$1" build-aarch64/tests/test_simd --gtest_brief=1
}

# Each leg's name, time and result, for the summary.
names=() times=() results=() failed=0 LEG_RC=0
record() {  # NAME SECONDS RC
  names+=("$1") times+=("$2")
  if [ "$3" -eq 0 ]; then
    results+=(ok)
  else
    results+=("FAILED (exit $3)")
    failed=$((failed + 1))
  fi
}

# leg NAME COMMAND...: runs one leg now, under errexit; its exit status in LEG_RC.
leg() {
  local name=$1 start=$SECONDS
  shift
  echo "=== cpu_matrix: $name"
  set +e
  (set -e; "$@")
  LEG_RC=$?
  set -e
  record "$name" $((SECONDS - start)) $LEG_RC
}

# two_at_a_time NAME COMMAND NAME COMMAND ...: runs each leg (COMMAND one word) under
# errexit, two at once, each into a log printed when it ends.
two_at_a_time() {
  local logs pid done_pid rc running=0 n=0
  local -A leg_name leg_start leg_log
  logs=$(mktemp -d)
  finish() {
    rc=0
    wait -n -p done_pid || rc=$?
    echo "=== cpu_matrix: ${leg_name[$done_pid]}"
    cat "${leg_log[$done_pid]}"
    record "${leg_name[$done_pid]}" $((SECONDS - leg_start[$done_pid])) $rc
    running=$((running - 1))
  }
  while [ $# -gt 0 ]; do
    [ $running -lt 2 ] || finish
    n=$((n + 1))
    (set -e; $2) >"$logs/$n.log" 2>&1 &
    pid=$!
    leg_name[$pid]=$1 leg_start[$pid]=$SECONDS leg_log[$pid]=$logs/$n.log
    running=$((running + 1))
    shift 2
  done
  while [ $running -gt 0 ]; do finish; done
  rm -rf "$logs"
}

run_neon() { run_tests build-aarch64 NEON qemu-aarch64 -cpu cortex-a72; }  # NEON only
run_sve2() { run_tests build-aarch64 SVE2 qemu-aarch64 -cpu max; }         # SVE2 at 512 bits
run_sve2_128() { run_sve_kernels 16; }
run_sve_256() { run_sve_kernels 32; }

leg "install packages" install_packages
if [ $LEG_RC -eq 0 ]; then
  leg "x86-64 build (build/)" build_x86
  x86_build_rc=$LEG_RC
  leg "aarch64 cross build (build-aarch64/)" build_aarch64
  arm_build_rc=$LEG_RC
  legs=()
  [ $x86_build_rc -ne 0 ] || legs+=("x86-64 AVX2 (qemu-x86_64 -cpu Haswell)" run_x86)
  [ $arm_build_rc -ne 0 ] || legs+=(
    "aarch64 SVE2 512-bit (qemu-aarch64 -cpu max)" run_sve2
    "aarch64 NEON (qemu-aarch64 -cpu cortex-a72)" run_neon
    "aarch64 SVE2 128-bit kernels" run_sve2_128
    "aarch64 SVE 256-bit kernels" run_sve_256)
  two_at_a_time "${legs[@]}"
fi

echo "=== cpu_matrix: times"
for i in "${!names[@]}"; do
  printf '  %-46s %5d s  %s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}"
done
echo "cpu_matrix: $((${#names[@]} - failed)) passed, $failed failed"
[ $failed -eq 0 ]
