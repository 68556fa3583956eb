#!/usr/bin/env python3
"""Where the milter's time goes: `perf record -g` on cllavio-milter under the benchmark's load.

One private Postfix + cllavio-milter (tests/integration/harness.py), smtp-source sending COUNT copies of the
benchmark's HTML newsletter (bench/mailpath.py) over 10 sessions for one path:

  untracked   an org without tracking (identified, recorded, passed through)
  tracked     an org with opens and clicks (pixel, every link signed, body replaced)
  compact     the same org with token_version = 2 (compact tokens)
  policy      an org with a campaign stream under quotas (RCPT answered, consent, quota charge)

perf samples every thread of the daemon (user and kernel, DWARF call chains); each sample is given to
the highest-ranked part that a frame of its chain belongs to (tokens, rewrite engine, record encoding,
body replacement, LMDB, policy, log, session, libmilter), so memcpy or malloc called by the rewrite
counts as rewrite, a write(2) under smfi_replacebody as body replacement, one under libmilter's reply
as protocol. Prints the share of samples and the CPU ms per message of
each part (the daemon's CPU per message measured from /proc over the same load).

    python3 bench/profile.py [--path tracked] [--size 50] [--count 1000] [--freq 499] [--keep DIR]

Needs root and linux-perf (apt-get install -y linux-perf); build first (scripts/build.sh).
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mailpath  # noqa: E402
from mailpath import harness, ORG, ORG_TRACKED, ORG_POLICY, KEY, COMMON  # noqa: E402

# (part, regex over "symbol dso"), in rank order: a sample belongs to the highest-ranked part that any
# frame of its call chain matches.
PARTS = [
    ("tokens (HMAC-SHA256, base64url)", r"MessageSigner|TokenCodec|sha256|SHA256|HMAC|hmac|EVP_MAC|base64url"),
    ("rewrite engine (MIME, decode, scan, patch, encode, self-check)", r"cllavio::tracking::"),
    ("record and event encoding", r"cllavio::store::.*(encode|cbor)|cllavio::core::(from_record|to_text|.*[Ee]vent)|nlohmann"),
    ("body replacement (to Postfix)", r"smfi_replacebody|SmfiActions"),
    ("LMDB write, commit and sync", r"\bmdb_|fdatasync|fsync|msync|GroupCommit|group_commit"),
    ("quota, consent, policy", r"cllavio::(quota|policy)::|QuotaBackend|LocalQuota|recipient_refusal"),
    ("log line", r"cllavio::core::Logger|syslog|sd_journal"),
    ("background threads (forwarder, follower, pruner)", r"Forwarder|Follower|Pruner|cllavio::core::Worker"),
    ("session (headers, body buffer, plan)", r"cllavio::milter::(?!run_milter|daemon_main|thread_reuse)|cllavio::core::"),
    ("libmilter protocol (read, reply, worker pool, threads)", r"\bmi_|\bst_[a-z]+|sendreply|libmilter|smfi_|thread_reuse"),
]
GENERIC = [
    ("kernel: thread creation (libmilter starts workers)", r"copy_process|kernel_clone|clone3"),
    ("kernel (scheduler, sockets, other)", r"\[kernel"),
    ("libc, libstdc++ (other)", r"libc\.so|libstdc\+\+|ld-linux"),
]


def classify(frames):
    """The highest-ranked part any frame of the chain belongs to (PARTS is in rank order), so the
    HMAC inside the rewrite counts as tokens and the fsync under the session's commit as LMDB;
    chains in none of them by their leaf."""
    best = None
    for sym in frames:
        for rank, (part, rx) in enumerate(PARTS):
            if (best is None or rank < best) and re.search(rx, sym):
                best = rank
                break
    if best is not None:
        return PARTS[best][0]
    for part, rx in GENERIC:
        if any(re.search(rx, f) for f in frames[:1] + [f for f in frames if "clone" in f]):
            return part
    return "other"


def parse_script(text):
    """perf script output: a header line per sample, then one frame per line, blank line between."""
    counts = collections.Counter()
    frames = []
    for line in text.splitlines():
        if not line.strip():
            if frames:
                counts[classify(frames)] += 1
            frames = []
            continue
        if line.startswith((" ", "\t")):
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                frames.append(parts[1])
    if frames:
        counts[classify(frames)] += 1
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--path", choices=["untracked", "tracked", "compact", "policy"], default="tracked")
    ap.add_argument("--size", type=int, default=50, help="KiB")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--freq", type=int, default=499)
    ap.add_argument("--keep", help="keep perf.data in this directory")
    args = ap.parse_args()
    if not shutil.which("perf"):
        sys.exit("perf not found: apt-get install -y linux-perf")
    if args.path == "policy":
        h = harness.Harness(orgs={"bench": ORG_POLICY}, milter="unix", **COMMON)
    else:
        # compact: the tracked org with token_version = 2 (needs an API URL and the org's key;
        # the URL is a closed port, so events stay in the outbox as for the other paths)
        track = ORG_TRACKED + ("token_version = 2\n" if args.path == "compact" else "")
        secrets = dict(KEY, api={"signing_secret": "bench-signing-secret-0123", "org_keys": {"track": "k"}})
        h = harness.Harness(orgs={"bench": ORG, "track": track}, milter="unix", secrets=secrets,
                            settings={"api.url": f"https://127.0.0.1:{harness.free_port()}"}, **COMMON)
    sender = "news@track.example" if args.path in ("tracked", "compact") else "news@bench.example"
    work = args.keep or tempfile.mkdtemp(prefix="cllavio-profile-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "perf.data")
    try:
        h.start()
        files = mailpath.write_files(h, mailpath.tracked_message, [args.size], "html")
        mailpath.run_once(h, files[args.size], 100, args.sessions, sender)  # warm-up
        pid = h.milter_proc.pid
        perf = subprocess.Popen(["perf", "record", "-q", "-F", str(args.freq), "--call-graph", "dwarf,32768",
                                 "-p", str(pid), "-o", data], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        rate, cpu_ms = mailpath.run_once(h, files[args.size], args.count, args.sessions, sender)
        perf.send_signal(2)
        perf.wait(60)
        script = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,dso"], capture_output=True,
                                text=True, errors="replace", timeout=1800).stdout
    finally:
        h.close()
    counts = parse_script(script)
    total = sum(counts.values()) or 1
    print(f"{args.path}, {args.size} KB HTML newsletter, {args.count} messages over {args.sessions} sessions: "
          f"{rate:.1f} msg/s, milter CPU {cpu_ms:.2f} ms/msg; {total} samples")
    print(f"{'part':<66} {'share':>6} {'ms/msg':>7}")
    for part, n in counts.most_common():
        print(f"{part:<66} {100.0 * n / total:5.1f}% {cpu_ms * n / total:7.3f}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
