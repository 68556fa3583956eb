#!/usr/bin/env python3
"""The README's performance targets, measured side by side in one interleaved run.

Configurations (each a private Postfix, tests/integration/harness.py, next hop smtp-sink; 10 sessions
of smtp-source; the same single-part HTML newsletter, about 10 links per KiB, for every path):

  postfix     Postfix alone
  null        bench/null_milter.c, a libmilter milter that negotiates every step away
  untracked   cllavio-milter, an org without tracking: identified, recorded, not changed
  tracked     the same cllavio-milter daemon, an org with opens and clicks (pixel, every link signed)
  compact     an org like the tracked one with token_version = 2 (compact tokens: no destination
              inside), in the same daemon (version 2 needs api.url: it points at a closed local
              port, so events stay in the outbox for every org, as without an API)
  grown       the untracked org sending what the tracked rewrite produces (the size alone);
  grown-compact  the same for the compact rewrite
  policy      cllavio-milter, an org whose mail is a campaign stream under message and recipient
              quotas (RCPT answered, consent read for suppression, the quota reserved and charged)

Then the targets, each from medians of ratios paired within a repetition:

  tracked 5 KB            >= 0.80x postfix           (and the same for compact)
  tracked 50 KB           >= 0.70x postfix and >= 0.90x untracked   (and for compact)
  untracked (pass-through) >= 0.95x null
  policy                  <= +0.15 ms of milter CPU per message over untracked
  peak RSS (10 sessions)  <= 64 MB, mapped store included (the heap shown beside it; after every run of
                          the daemon, so more runs map more of the store)

    python3 bench/targets.py [--reps 3] [--count 2000] [--sessions 10] [--sizes 5,50] [--baseline BIN]

--baseline BIN adds base-untracked / base-tracked / base-policy run by another cllavio-milter binary in
the same run. Needs root; build first (scripts/build.sh). Exits 0 whatever the figures are: it measures,
it does not judge a noisy machine; the last lines say which targets were met in this run.
"""

import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mailpath  # noqa: E402
from mailpath import harness, ORG, ORG_TRACKED, ORG_POLICY, KEY, COMMON, ROOT  # noqa: E402

# Named with as many characters as "track" (id and tracking host): only the token version differs.
ORG_COMPACT = (ORG_TRACKED.replace('"track"', '"cmpct"').replace("track.example", "cmpct.example")
               + "token_version = 2\n")
# Both tracking orgs have an API key (the forwarder and poller treat them alike); the API is a closed
# port, so every org's events stay in the outbox as without an API.
API_SECRETS = dict(KEY, api={"signing_secret": "bench-signing-secret-0123",
                             "org_keys": {"track": "bench-track-key", "cmpct": "bench-cmpct-key"}})

# The policy org sends as news@bench.example (its campaign stream's sender), like the others.
POLICY_SENDER = "news@bench.example"


def paired(results, name, base, kb):
    return statistics.median(r / b for r, b in zip(results[(name, kb)], results[(base, kb)]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--sizes", default="5,50")
    ap.add_argument("--baseline", help="another cllavio-milter binary measured beside this one")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    null_milter = os.environ.get("CLLAVIO_NULL_MILTER", os.path.join(ROOT, "build", "bench", "null-milter"))

    daemons = {
        "postfix": dict(orgs={"bench": ORG}, milter=None),
        "null": dict(orgs={"bench": ORG}, milter="unix", milter_command=[null_milter, "{socket}"]),
        "cllavio": dict(orgs={"bench": ORG, "track": ORG_TRACKED, "cmpct": ORG_COMPACT}, milter="unix",
                        secrets=API_SECRETS,
                        # Room for every run's events: a full outbox tempfails compact mail (by design).
                        settings={"api.url": f"https://127.0.0.1:{harness.free_port()}", "store.map_size_mb": 8192,
                                  "api.max_outbox_mb": 4096}),
        "policy": dict(orgs={"bench": ORG_POLICY}, milter="unix"),
    }
    if args.baseline:
        base = [args.baseline, "-c", "{config}"]
        # The same settings without the compact org: an earlier build may not know token_version.
        daemons["base"] = dict(daemons["cllavio"], orgs={"bench": ORG, "track": ORG_TRACKED}, milter_command=base)
        daemons["base-policy"] = dict(daemons["policy"], milter_command=base)
    hs = {}
    try:
        for name, kw in daemons.items():
            hs[name] = harness.Harness(**COMMON, **kw)
            hs[name].start()
        files = {n: mailpath.write_files(h, mailpath.tracked_message, sizes, "html") for n, h in hs.items()}
        runs = {
            "postfix": (hs["postfix"], files["postfix"], "news@bench.example"),
            "null": (hs["null"], files["null"], "news@bench.example"),
            "untracked": (hs["cllavio"], files["cllavio"], "news@bench.example"),
            "tracked": (hs["cllavio"], files["cllavio"], "news@track.example"),
            "policy": (hs["policy"], files["policy"], POLICY_SENDER),
            "compact": (hs["cllavio"], files["cllavio"], "news@cmpct.example"),
        }
        grown, grown_compact = {}, {}
        ctl = os.environ.get("CLLAVIO_CTL", os.path.join(ROOT, "build", "cli", "cllavioctl"))
        for kb in sizes:
            for org, out in (("track", grown), ("cmpct", grown_compact)):
                out[kb] = os.path.join(hs["cllavio"].tmp_dir, f"grown-{org}-{kb}k.eml")
                with open(files["cllavio"][kb], "rb") as src, open(out[kb], "wb") as dst:
                    subprocess.run([ctl, "-c", hs["cllavio"].config_path, "rewrite", "--org", org, "--from",
                                    f"news@{org}.example", "--rcpt", "rcpt@example.net"], stdin=src, stdout=dst,
                                   check=True, timeout=60)
        runs["grown"] = (hs["cllavio"], grown, "news@bench.example")
        runs["grown-compact"] = (hs["cllavio"], grown_compact, "news@bench.example")
        if args.baseline:
            runs["base-untracked"] = (hs["base"], files["base"], "news@bench.example")
            runs["base-tracked"] = (hs["base"], files["base"], "news@track.example")
            runs["base-policy"] = (hs["base-policy"], files["base-policy"], POLICY_SENDER)
        results, cpu = mailpath.measure(runs, sizes, args)

        print("message sizes (bytes): " + ", ".join(
            f"{kb} KB {os.path.getsize(files['cllavio'][kb])} -> tracked {os.path.getsize(grown[kb])}, "
            f"compact {os.path.getsize(grown_compact[kb])}" for kb in sizes))
        print(f"\ntargets: {args.count} messages, {args.sessions} sessions, {args.reps} interleaved repetitions, "
              f"{os.cpu_count()} CPUs; single-part HTML newsletter; medians (ratios: medians of paired ratios)")
        print(f"{'size':>6} {'configuration':<15} {'msg/s':>8} {'x postfix':>10} {'x null':>8} {'x untracked':>12}"
              f" {'milter ms/msg':>14}")
        for kb in sizes:
            for name in runs:
                c = f"{statistics.median(cpu[(name, kb)]):.2f}" if cpu[(name, kb)] else "-"
                print(f"{kb:>4}KB {name:<15} {statistics.median(results[(name, kb)]):8.1f} "
                      f"{paired(results, name, 'postfix', kb):10.2f} {paired(results, name, 'null', kb):8.2f} "
                      f"{paired(results, name, 'untracked', kb):12.2f} {c:>14}")

        checks = []
        small, big = sizes[0], sizes[-1]
        checks.append((f"tracked {small} KB >= 0.80x postfix", paired(results, "tracked", "postfix", small), 0.80, ">="))
        checks.append((f"tracked {big} KB >= 0.70x postfix", paired(results, "tracked", "postfix", big), 0.70, ">="))
        checks.append((f"tracked {big} KB >= 0.90x untracked", paired(results, "tracked", "untracked", big), 0.90, ">="))
        checks.append((f"compact {small} KB >= 0.80x postfix", paired(results, "compact", "postfix", small), 0.80, ">="))
        checks.append((f"compact {big} KB >= 0.70x postfix", paired(results, "compact", "postfix", big), 0.70, ">="))
        checks.append((f"compact {big} KB >= 0.90x untracked", paired(results, "compact", "untracked", big), 0.90, ">="))
        for kb in sizes:
            checks.append((f"untracked {kb} KB >= 0.95x null", paired(results, "untracked", "null", kb), 0.95, ">="))
            delta = statistics.median(p - u for p, u in zip(cpu[("policy", kb)], cpu[("untracked", kb)]))
            checks.append((f"policy {kb} KB <= +0.15 ms CPU/msg over untracked", delta, 0.15, "<="))
        for name in ("cllavio", "policy"):
            m = mailpath.memory_kb(hs[name].milter_proc.pid)
            checks.append((f"peak RSS {name} <= 64 MB (heap at the end {m.get('RssAnon', 0) / 1024:.1f} MB, "
                           f"mapped {m.get('RssFile', 0) / 1024:.1f} MB)", m.get("VmHWM", 0) / 1024, 64, "<="))
        print()
        for text, value, bound, op in checks:
            ok = value >= bound if op == ">=" else value <= bound
            print(f"{'met ' if ok else 'MISS'}  {text:<75} {value:8.2f}")
    finally:
        for h in hs.values():
            h.close()


if __name__ == "__main__":
    main()
