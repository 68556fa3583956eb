#!/usr/bin/env python3
"""Golden rewrite tests: every tests/golden/NAME.eml goes through `cllavioctl rewrite` (the
milter's own tracking step) with the fixed test configuration in config/, and must give
NAME.out.eml and NAME.report.json byte for byte. Inputs named textco-* use the org with
text links and a top pixel, compact-* the org with version 2 (compact) tokens; the others use acme.

    python3 tests/golden/run_golden.py            # check
    python3 tests/golden/run_golden.py --update   # rewrite the expectations (review the diff!)
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CTL = os.environ.get("CLLAVIO_CTL", os.path.join(REPO, "build", "cli", "cllavioctl"))
MESSAGE_ID = "000661600b8284cc"


def main() -> int:
    update = "--update" in sys.argv[1:]
    inputs = sorted(f for f in os.listdir(HERE) if f.endswith(".eml") and not f.endswith(".out.eml"))
    failures = []
    with tempfile.TemporaryDirectory(prefix="cllavio-golden-") as tmp:
        conf = os.path.join(tmp, "config")
        shutil.copytree(os.path.join(HERE, "config"), conf)
        os.chmod(os.path.join(conf, "secrets.toml"), 0o600)  # git does not keep modes
        for name in inputs:
            stem = name[:-4]
            org = next((o for o in ("textco", "compact") if stem.startswith(o + "-")), "acme")
            report = os.path.join(tmp, stem + ".json")
            with open(os.path.join(HERE, name), "rb") as f:
                r = subprocess.run([CTL, "-c", os.path.join(conf, "cllavio.toml"), "rewrite", "--org", org,
                                    "--rcpt", "bob@example.net", "--message-id", MESSAGE_ID, "--report", report],
                                   stdin=f, capture_output=True, timeout=60)
            if r.returncode != 0:
                failures.append(f"{name}: cllavioctl exited {r.returncode}: {r.stderr.decode(errors='replace')}")
                continue
            got = {".out.eml": r.stdout, ".report.json": open(report, "rb").read()}
            for suffix, data in got.items():
                path = os.path.join(HERE, stem + suffix)
                if update:
                    with open(path, "wb") as f:
                        f.write(data)
                elif not os.path.exists(path) or open(path, "rb").read() != data:
                    failures.append(f"{name}: output differs from {stem + suffix} (run with --update and review)")
            print(f"{'updated' if update else 'ok' if not failures else 'checked'} {name}")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
