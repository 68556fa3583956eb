#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#   1. installs the dependencies (scripts/deps.sh)
#   2. builds and runs every test: unit tests and integration tests against a real
#      Postfix (tests/integration), via ctest
#   3. builds with AddressSanitizer + UBSan (clang) and runs the unit tests and the identification,
#      lifecycle, tracking, policy, events, preview, delivery and shared-quota integration tests against
#      the sanitized daemon
#   4. runs each libFuzzer target briefly (CLLAVIO_FUZZ_SECONDS, default 10); they come from the
#      same clang build as step 3 (scripts/build.sh --sanitized)
# Exits non-zero on the first failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
step() { printf '\n==== %s (%ds)\n' "$*" "$(( $(date +%s) - start ))"; }

step "dependencies"
scripts/deps.sh

step "build"
# -g1 (line tables) instead of -g: the same code, a fifth less build time; gdb still has file:line,
# the package test's dbgsym still builds. The test code itself is built with -Og (tests/CMakeLists.txt).
scripts/build.sh build -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
step "unit and integration tests"
# Four at a time: the integration tests mostly wait on Postfix (tests/CMakeLists.txt).
(cd build && ctest --output-on-failure -j4)

step "build with ASan+UBSan and the fuzz targets (clang)"
scripts/build.sh --sanitized build-asan
step "unit tests and daemon integration tests under ASan+UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j2 -L unit)
(cd build-asan && ctest --output-on-failure -j3 -R 'integration\.test_(identification|lifecycle|tracking_e2e|policy_e2e|events_e2e|preview|delivery_e2e|delivery_journal|privacy_e2e|redis_quota)$')

step "fuzz smoke run"
scripts/fuzz.sh "${CLLAVIO_FUZZ_SECONDS:-10}"

step "all tests passed"
