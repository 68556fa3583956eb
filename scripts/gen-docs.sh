#!/usr/bin/env bash
# Regenerates the configuration reference in docs/configuration.md from the schema
# (the unit test test_loader fails when the two differ).
#   scripts/gen-docs.sh [BUILD_DIR]    (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
doc=$root/docs/configuration.md
ref=$("$build/cli/cllavioctl" config-reference)
python3 - "$doc" "$ref" <<'PY'
import sys
doc, ref = sys.argv[1], sys.argv[2] + "\n"
begin = "<!-- BEGIN GENERATED: cllavioctl config-reference -->\n"
end = "<!-- END GENERATED -->"
text = open(doc).read()
b, e = text.index(begin) + len(begin), text.index(end)
open(doc, "w").write(text[:b] + ref + text[e:])
PY
echo "updated $doc"
