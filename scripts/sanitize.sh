#!/usr/bin/env bash
# The sanitizer leg: builds the library, the tools and the server with AddressSanitizer
# and UndefinedBehaviorSanitizer (GCC, -O1 and line tables, no CUDA) into build-asan/,
# the tests linked with the sanitizer runtimes (tests/CMakeLists.txt says why their own
# code is not instrumented), and runs the whole ctest suite there; any sanitizer report
# (memory error, leak, undefined behaviour) stops the test at once and fails it. Extra
# arguments go to ctest (e.g. -R ModelFile). Prints the build and test times.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
start=$SECONDS
# -O1 -g1: ASan's recommended level, file and line in every report; -O2 -g took GCC
# twice as long (src/server/request.cpp: 91 s against 45).
flags="-O1 -g1 -DNDEBUG"
cmake -S . -B build-asan -DQRUN_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$flags" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$flags" -DQRUN_CUDA=OFF \
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
