#!/usr/bin/env bash
# Installs the Debian bookworm packages qrun builds and tests with. Idempotent and
# non-interactive; skips apt entirely when everything is already there.
set -euo pipefail
packages=(build-essential cmake pkg-config
  libhwy-dev libopenblas-dev libcpuinfo-dev libcli11-dev nlohmann-json3-dev
  libxxhash-dev libpcre2-dev libutf8proc-dev libcpp-httplib-dev libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-numpy)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
