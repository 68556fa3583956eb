#!/usr/bin/env bash
# Installs the dependencies, builds, and runs a local demo: a private Postfix on
# 127.0.0.1 with cllavio-milter attached, smtp-sink as the next hop; sends sample
# mail, shows what arrived and what was logged and recorded, then stops.
#   scripts/demo.sh          run and stop
#   scripts/demo.sh --keep   stay up and print how to send it mail (Ctrl-C stops)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh"
"$root/scripts/build.sh" "$root/build" >/dev/null
exec python3 "$root/scripts/demo.py" "$@"
