#!/usr/bin/env bash
# Installs a qrun build into a scratch prefix and uses it as a library user would:
#   - every installed header compiles on its own and includes only installed headers;
#   - tests/install/consumer (find_package(qrun)) builds examples/generate.cpp, and so does
#     one compiler line with `pkg-config --cflags --libs --static qrun`;
#   - both programs generate text from stories260K converted by the installed qconvert.
# Exits 77 (ctest: skipped) without cmake, pkg-config or ../shared's stories260K.
#
#   check_install.sh BUILD_DIR SOURCE_DIR SHARED_DIR [CXX] [CMAKE]
set -euo pipefail
build=$(cd "$1" && pwd) source=$(cd "$2" && pwd) shared=$3
cxx=${4:-c++}
cmake_bin=${5:-$(command -v cmake || true)}

skip() { echo "skipped: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -n $cmake_bin && -x $cmake_bin ]] || skip "cmake not found"
command -v pkg-config >/dev/null || skip "pkg-config not found"
model_dir=$shared/models/stories260K
[[ -f $model_dir/config.json ]] || skip "$model_dir not found"
[[ -f $build/cmake_install.cmake ]] || fail "$build is not a configured qrun build"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/qrun-install.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
prefix=$scratch/prefix
log=$scratch/log
# Run a step quietly; on failure show what it printed.
step() {
  local what=$1; shift
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    fail "$what: $*"
  fi
}

step "install" "$cmake_bin" --install "$build" --prefix "$prefix"
for tool in qrun qconvert qtok qppl; do
  [[ -x $prefix/bin/$tool ]] || fail "bin/$tool not installed"
done
lib=$(find "$prefix" -name libqrun.a -print -quit)
[[ -n $lib ]] || fail "libqrun.a not installed"
[[ -f $prefix/include/qrun/model.h ]] || fail "include/qrun/model.h not installed"
config=$(find "$prefix" -name qrunConfig.cmake -print -quit)
pcfile=$(find "$prefix" -name qrun.pc -print -quit)
[[ -n $config && -n $pcfile ]] || fail "qrunConfig.cmake or qrun.pc not installed"
echo "installed: $(cd "$prefix" && find . -type f | wc -l) files; ${lib#"$prefix"/}, ${config#"$prefix"/}, ${pcfile#"$prefix"/}"

# The installed headers include nothing from outside the installed tree ("src/...",
# "simd/...") and each compiles alone.
for header in "$prefix"/include/qrun/*.h; do
  while read -r inc; do
    [[ -f $prefix/include/$inc ]] || fail "${header#"$prefix"/} includes \"$inc\", which is not installed"
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$header")
  step "header alone" "$cxx" -std=c++20 -fsyntax-only -I"$prefix/include" -x c++ "$header"
done

# The example, copied out of the source tree so only the installed headers can be found.
cp "$source/examples/generate.cpp" "$scratch/generate.cpp"
grep -q '#include "qrun/' "$scratch/generate.cpp" || fail "examples/generate.cpp includes no qrun header"
if grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$scratch/generate.cpp" | grep -v '"qrun/'; then
  fail "examples/generate.cpp includes a non-public header"
fi

model=$scratch/stories260K.q8
step "qconvert" "$prefix/bin/qconvert" "$model_dir" -o "$model" --type q8

run_generate() {  # PROGRAM
  local prompt="Once upon a time" out=$scratch/out.txt
  if ! "$1" "$model" "$prompt" 24 >"$out" 2>"$scratch/err.txt"; then
    cat "$out" "$scratch/err.txt" >&2
    fail "$1 exited non-zero"
  fi
  local text
  text=$(cat "$out")
  [[ $text == "$prompt"* ]] || fail "$1 did not echo the prompt: $text"
  [[ ${text#"$prompt"} =~ [[:alpha:]] ]] || fail "$1 generated no text: $text"
  echo "$(basename "$1"): $(tr '\n' ' ' <"$out" | cut -c1-120)"
}

# find_package(qrun): the prefix is the only place to find it.
consumer=$scratch/consumer
step "consumer configure" "$cmake_bin" -S "$source/tests/install/consumer" -B "$consumer" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON -DQRUN_EXAMPLE="$scratch/generate.cpp"
grep -q "qrun .* from $prefix/" "$log" || { cat "$log"; fail "find_package(qrun) did not use $prefix"; }
step "consumer build" "$cmake_bin" --build "$consumer" -j2
run_generate "$consumer/generate"

# pkg-config, static: Libs.private and Requires.private give what libqrun.a needs.
export PKG_CONFIG_PATH=$(dirname "$pcfile")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
[[ $(pkg-config --variable=pcfiledir qrun) == "$(dirname "$pcfile")" ]] || fail "pkg-config found another qrun.pc"
read -r -a pc_flags <<<"$(pkg-config --cflags --libs --static qrun)"
echo "pkg-config --cflags --libs --static qrun: ${pc_flags[*]}"
step "pkg-config build" "$cxx" -std=c++20 -O1 "$scratch/generate.cpp" -o "$scratch/generate_pc" "${pc_flags[@]}"
run_generate "$scratch/generate_pc"
echo "install check passed"
