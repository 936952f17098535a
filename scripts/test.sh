#!/usr/bin/env bash
# Installs packages, builds everything and runs the whole test suite under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh "$@"
cd build
ctest --output-on-failure -j"$(nproc)"
