#!/usr/bin/env bash
# Fresh machine -> a story: installs packages, builds, converts the shipped model to
# q8 and q4, prints the q4 file's summary and generates from it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh
model_dir=../shared/models/stories260K
mkdir -p models
./build/bin/qconvert "$model_dir" -o models/stories260K.q8 --type q8
./build/bin/qconvert "$model_dir" -o models/stories260K.q4 --type q4
./build/bin/qconvert --info models/stories260K.q4 | head -20
./build/bin/qrun -m models/stories260K.q4 -p "Once upon a time" -n 200 --temp 0
