#!/usr/bin/env bash
# Configures and builds into BUILD_DIR (default build/). Extra arguments go to cmake.
#   scripts/build.sh [--sanitized] [BUILD_DIR] [-DCLLAVIO_BENCH=OFF ...]
#   --sanitized   clang, AddressSanitizer + UBSan, libFuzzer coverage, -O1 -g1, no benchmarks: one build
#                 for the sanitized unit and daemon tests and the fuzz targets (default dir build-asan/)
#   CLLAVIO_BUILD_TARGETS="a b"   builds only those targets
# A new build directory uses Ninja when it is installed (Make otherwise).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
preset=()
default=$root/build
if [ "${1:-}" = "--sanitized" ]; then
  shift
  default=$root/build-asan
  preset=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCLLAVIO_FUZZ=ON -DCLLAVIO_BENCH=OFF
          -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DCMAKE_C_FLAGS_DEBUG="-O1 -g1")
fi
build=${1:-$default}
shift || true
generator=()
if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null; then
  generator=(-G Ninja)
fi
cmake -S "$root" -B "$build" "${generator[@]}" "${preset[@]}" "$@" >/dev/null
targets=()
for t in ${CLLAVIO_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j"$(nproc)" "${targets[@]}"
