#!/usr/bin/env python3
"""The token contract in docs/tokens.md holds: its reference verifier (the Python block,
run as written) accepts every pixel and click token in the golden outputs (versions 1 and 2)
with the test key and reads the same fields `cllavioctl token verify` prints (a version 2
click's url is null in both: there is no store here to resolve it); it refuses a tampered
token and an unknown key; and it decodes both documented known-answer vectors to the
documented fields.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CTL = os.environ.get("CLLAVIO_CTL", os.path.join(REPO, "build", "cli", "cllavioctl"))
TOKEN_URL = re.compile(rb"https://[a-z0-9.-]+/([oc])/([A-Za-z0-9_-]+)")


def doc_verifier():
    doc = open(os.path.join(REPO, "docs", "tokens.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert len(blocks) == 1, "docs/tokens.md must hold exactly one python block"
    ns = {}
    exec(blocks[0], ns)  # noqa: S102 - our own documentation
    return ns["verify"], doc


def main() -> int:
    verify, doc = doc_verifier()
    failures = []
    secret = re.search(r'secret = "([^"]+)"', open(os.path.join(HERE, "config", "secrets.toml")).read()).group(1)
    keys = {"golden": base64.b64decode(secret)}

    # The documented known-answer vector decodes to the documented fields.
    section = re.search(r"## Known-answer vector(.*?)\n## ", doc, re.S).group(1)
    vectors = re.findall(r"```\n(\S+)\n```", section)
    want = {"kind": "click", "key_id": "2026a", "org": "acme", "message": "0006615fb009e1cb",
            "recipient": "bob@example.net", "link": 7, "url": "https://www.example.com/reset?token=a&b=c#frag",
            "version": 1}
    want2 = dict(want, recipient=None, url=None, version=2)
    if len(vectors) != 2:
        failures.append(f"expected two known-answer vectors (versions 1 and 2), found {len(vectors)}")
    for vector, expected in zip(vectors, (want, want2)):
        got = verify(vector, {"2026a": b"k" * 32})
        if got != expected:
            failures.append(f"known-answer vector {vector} decodes to {got}")

    with tempfile.TemporaryDirectory(prefix="cllavio-tokdoc-") as tmp:
        conf = os.path.join(tmp, "config")
        shutil.copytree(os.path.join(HERE, "config"), conf)
        os.chmod(os.path.join(conf, "secrets.toml"), 0o600)
        checked = 0
        versions = set()
        for name in sorted(os.listdir(HERE)):
            if not name.endswith(".out.eml"):
                continue
            raw = open(os.path.join(HERE, name), "rb").read().replace(b"=\r\n", b"").replace(b"=\n", b"")
            for m in TOKEN_URL.finditer(raw):
                token = m.group(2).decode()
                mine = verify(token, keys)
                versions.add(mine["version"])
                r = subprocess.run([CTL, "-c", os.path.join(conf, "cllavio.toml"), "token", "verify", token],
                                   capture_output=True, text=True, timeout=30)
                if r.returncode != 0:
                    failures.append(f"{name}: cllavioctl refused {token}: {r.stderr}")
                    continue
                theirs = json.loads(r.stdout)
                if mine != theirs or mine["kind"][0] != m.group(1).decode():
                    failures.append(f"{name}: doc verifier {mine} != cllavioctl {theirs}")
                for bad, keyset in ((token[:-2] + ("AA" if token[-2:] != "AA" else "BA"), keys),
                                    (token, {"other": keys["golden"]})):
                    try:
                        verify(bad, keyset)
                        failures.append(f"{name}: doc verifier accepted a tampered token or unknown key")
                    except (ValueError, IndexError):
                        pass
                checked += 1
        if checked < 10:
            failures.append(f"only {checked} tokens found in the golden outputs")
        if versions != {1, 2}:
            failures.append(f"the golden outputs hold token versions {sorted(versions)}, not both 1 and 2")
    for f in failures:
        print("FAIL", f)
    print(f"checked {checked} golden tokens and the known-answer vectors against docs/tokens.md")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
