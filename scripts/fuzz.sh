#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan; the sanitized build, build-asan/, see
# scripts/build.sh --sanitized) and runs each one for a while on its seed corpus
# (tests/fuzz/corpus/NAME). Findings stop the run.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 20; CLLAVIO_FUZZ_JOBS at a time, default nproc;
#                                            CLLAVIO_FUZZ_TARGETS="mime html ..." runs only those)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-20}
build=$root/build-asan
targets="${CLLAVIO_FUZZ_TARGETS:-config socket_spec redis_url network address record mime encoding html rewrite token policy events plan logline milter_list}"
CLLAVIO_BUILD_TARGETS="$(for t in $targets; do printf 'fuzz_%s ' "$t"; done)" "$root/scripts/build.sh" --sanitized "$build"
# One fuzzer per CPU at a time; each one's summary is printed when it ends.
jobs=${CLLAVIO_FUZZ_JOBS:-$(nproc)}
run_one() {
  local f=$1 work
  work=$(mktemp -d)
  cp "$root/tests/fuzz/corpus/$f/"* "$work/"
  { echo "== fuzz_$f (${secs}s)"
    (cd "$work" && "$build/tests/fuzz/fuzz_$f" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
       -artifact_prefix="$work/" "$work" 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Test unit written' || true)
  } > "$work.out"
  cat "$work.out"
  rm -f "$work.out"
  if [ -n "$(find "$work" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) -print -quit)" ]; then
    echo "fuzz_$f found a problem; inputs kept in $work" >&2
    return 1
  fi
  rm -rf "$work"
}
export -f run_one
export root build secs
if ! printf '%s\n' $targets | xargs -P "$jobs" -I{} bash -c 'run_one "$1"' _ {}; then
  echo "fuzzing: findings (see above)" >&2
  exit 1
fi
echo "fuzzing: no findings"
