#!/usr/bin/env bash
# The sanitizer leg: builds everything but the benches with AddressSanitizer and
# UndefinedBehaviorSanitizer (GCC, RelWithDebInfo, no CUDA) into build-asan/ and runs the
# whole ctest suite there; any sanitizer report (memory error, leak, undefined
# behaviour) stops the test at once and fails it. Extra arguments go to ctest (e.g.
# -R ModelFile). Prints the build and test times.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
start=$SECONDS
cmake -S . -B build-asan -DQRUN_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQRUN_CUDA=OFF \
  -DQRUN_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$(nproc)"
build_s=$((SECONDS - start))

# Tests spawn the tools (qrun, qconvert...), which inherit these.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
start=$SECONDS
rc=0
(cd build-asan && ctest --output-on-failure -j"$(nproc)" "$@") || rc=$?
echo "sanitize: build ${build_s}s, tests $((SECONDS - start))s"
exit $rc
