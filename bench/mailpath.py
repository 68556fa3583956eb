#!/usr/bin/env python3
"""End-to-end mail-path benchmark: Postfix alone vs Postfix + milters, measured in one run.

Each configuration is a private Postfix (tests/integration/harness.py) whose next hop is
smtp-sink (counting only). smtp-source sends COUNT messages over SESSIONS parallel sessions;
a run is timed from the start of smtp-source until the sink has received every message
(timing until Postfix accepts overstates throughput). Configurations and sizes are
interleaved in every repetition; medians over repetitions are printed, with ratios to
Postfix alone in the same repetition (paired, so drift of the shared machine between repetitions
cancels), the milters' CPU per message and cllavio-milter's peak RSS.

    python3 bench/mailpath.py [--suite passthrough|tracking|events|delivery|quota|all] [--reps 5] [--count 2000]
                              [--sessions 10] [--sizes 5,50] [--rcpts 2000]

passthrough: postfix (no milter), null (bench/null_milter.c, a do-nothing libmilter milter,
unix socket), cllavio-unix, cllavio-inet; newsletter-like mail of an org without tracking;
cllavio-policy: the same through the unix socket for an org whose mail is a campaign stream
under quotas (RCPT answered, consent read per recipient, the quota charged with the record):
the policy's cost is its CPU per message next to cllavio-unix's.
tracking: HTML mail with about 10 links per KiB (5 KiB: ~50 links, 50 KiB: ~500) through one
cllavio-milter, sent for an org without tracking ("untracked") and for an org with opens and
clicks on ("tracked"), plus Postfix alone; the ratio that matters is tracked / untracked.
events: the pass-through mail with events going to a local HTTPS API that answers ("api-up")
and to one that hangs ("api-hanging"); the ratio that matters is hanging / up (SMTP must not notice).
delivery: the pass-through mail through cllavio-milter with the log follower off and on
([delivery] log = Postfix's maillog_file: every delivery line parsed, joined and turned into an
event in the same run); the ratio that matters is on / off (target: within noise).
quota: cllavio-policy with [quota] backend = "local" (the store's ledger) and "redis" (a private
redis-server on loopback, tests/integration/redis_server.py); the ratio that matters is
redis / local (issue 13's target: within 10%) for msg/s and milter CPU per message; then the
RCPT TO latency as the client sees it (smtplib, --rcpts RCPTs per configuration and repetition
in 4 parallel sessions, 10 RCPTs per transaction then RSET), p50/p90/p99 over every repetition,
and what Redis holds per charged message.
--baseline PATH adds the same configurations run by another cllavio-milter binary (an earlier
build: base-unix, base-policy; base-untracked, base-tracked), so a change is measured against
what it changed in the same run.
Needs root; build first (scripts/build.sh).
"""

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

ORG = 'id = "bench"\ndomains = ["bench.example"]\nnetworks = ["127.0.0.0/8"]\n'
ORG_TRACKED = ('id = "track"\ndomains = ["track.example"]\nnetworks = ["127.0.0.0/8"]\n'
               '[tracking]\nopens = true\nclicks = true\ndomain = "t.track.example"\nconsent = "implied"\n')
# The same org with policy: its mail is a campaign stream (each recipient's consent is read
# at RCPT TO for suppression) under message and recipient quotas that never run out.
ORG_POLICY = ORG + ('[[stream]]\nname = "campaigns"\nsenders = ["news@bench.example"]\nkind = "campaign"\n'
                    '[quota]\nmessages = [{ per = "1m", max = 1000000 }, { per = "1d", max = 100000000 }]\n'
                    'recipients = [{ per = "1h", max = 100000000 }]\nmax_recipients_per_message = 1000\n')
KEY = {"tracking_key": [{"id": "bench", "secret": "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktYmVuY2gta2V5"}]}


def tracked_message(size_kb: int) -> bytes:
    """An HTML newsletter of about size_kb KiB with a link every ~100 bytes (50 KiB: ~500 links)."""
    head = ("From: News <news@track.example>\r\nTo: <rcpt@example.net>\r\nSubject: benchmark\r\n"
            "Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <bench@track.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n")
    lines, n = [], 0
    while len(head) + sum(map(len, lines)) < size_kb * 1024 - 40:
        lines.append(f'<a href="https://shop.example.com/p/{n}?utm_source=nl&amp;id={n}">Item {n}</a> new today<br>\r\n')
        n += 1
    return (head + "".join(lines) + "</body></html>\r\n").encode()


def message(size_kb: int) -> bytes:
    """A newsletter-like multipart/alternative message of about size_kb KiB."""
    head = ("From: Bench <news@bench.example>\r\nTo: <rcpt@example.net>\r\nSubject: benchmark\r\n"
            "Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <bench@bench.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n")
    para = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
            "labore et dolore magna aliqua.")
    target = size_kb * 1024
    text, html = [], []
    n = 0
    while len(head) + sum(map(len, text)) + sum(map(len, html)) < target - 400:
        text.append(para + "\r\n")
        html.append(f'<p>{para} <a href="https://www.example.com/p/{n}?utm_source=x&amp;id={n}">more</a></p>\r\n')
        n += 1
    return (head + "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + "".join(text) +
            "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n" + "".join(html) +
            "</body></html>\r\n--b--\r\n").encode()


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def peak_rss_kb(pid: int) -> int:
    return memory_kb(pid).get("VmHWM", 0)


def memory_kb(pid: int) -> dict:
    """VmHWM (peak RSS), RssAnon (heap, stacks) and RssFile (mapped files: libraries and the
    LMDB store's pages read through its memory map, which grows with the store and is page
    cache the kernel can reclaim)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0])
    return out


def describe_memory(pid: int) -> str:
    m = memory_kb(pid)
    return (f"peak RSS {m.get('VmHWM', 0) / 1024:.1f} MB (at the end: heap {m.get('RssAnon', 0) / 1024:.1f} MB, "
            f"mapped libraries and store {m.get('RssFile', 0) / 1024:.1f} MB)")


def run_once(h, path: str, count: int, sessions: int, sender: str) -> tuple[float, float | None]:
    """msg/s until the sink has all messages, and milter CPU ms per message (None without milter)."""
    base = h.sink_counters()["mesg"]
    pid = h.milter_proc.pid if h.milter_proc else None
    cpu0 = cpu_ticks(pid) if pid else 0
    t0 = time.monotonic()
    r = h.smtp_source(count=count, sessions=sessions, file=path, sender=sender,
                      rcpt="rcpt@example.net", timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {r.stderr[-500:]}")
    while h.sink_counters()["mesg"] < base + count:
        if time.monotonic() - t0 > 600:
            raise RuntimeError("sink did not receive everything within 600 s")
        time.sleep(0.02)
    elapsed = time.monotonic() - t0
    cpu_ms = None
    if pid:
        cpu_ms = (cpu_ticks(pid) - cpu0) * 1000.0 / os.sysconf("SC_CLK_TCK") / count
    return count / elapsed, cpu_ms


def report(title, configs, sizes, results, cpu, args, base_name):
    print(f"\n{title}: {args.count} messages, {args.sessions} sessions, {args.reps} interleaved repetitions, "
          f"{os.cpu_count()} CPUs; medians")
    print(f"x {base_name}: median over repetitions of (rate / {base_name}'s rate in the same repetition)")
    print(f"{'size':>6} {'configuration':<14} {'msg/s':>8} {'x ' + base_name:>12} {'milter ms/msg':>14}")
    for kb in sizes:
        base = results[(base_name, kb)]
        for name in configs:
            med = statistics.median(results[(name, kb)])
            ratio = statistics.median(r / b for r, b in zip(results[(name, kb)], base))
            c = f"{statistics.median(cpu[(name, kb)]):.2f}" if cpu[(name, kb)] else "-"
            print(f"{kb:>4}KB {name:<14} {med:8.1f} {ratio:12.2f} {c:>14}")


def measure(runs, sizes, args):
    """runs: {name: (harness, {kb: file}, sender)}; interleaved repetitions."""
    results = {(n, kb): [] for n in runs for kb in sizes}
    cpu = {(n, kb): [] for n in runs for kb in sizes}
    for name, (h, files, sender) in runs.items():  # warm-up, not measured
        run_once(h, files[sizes[0]], 100, args.sessions, sender)
    for rep in range(args.reps):
        for kb in sizes:
            for name, (h, files, sender) in runs.items():
                rate, cpu_ms = run_once(h, files[kb], args.count, args.sessions, sender)
                results[(name, kb)].append(rate)
                if cpu_ms is not None:
                    cpu[(name, kb)].append(cpu_ms)
                print(f"rep {rep + 1} {kb:>3} KB {name:<13} {rate:7.1f} msg/s"
                      + (f"  milter cpu {cpu_ms:.2f} ms/msg" if cpu_ms is not None else ""), flush=True)
    return results, cpu


def write_files(h, make, sizes, prefix):
    files = {}
    for kb in sizes:
        files[kb] = os.path.join(h.tmp_dir, f"{prefix}-{kb}k.eml")
        with open(files[kb], "wb") as f:
            f.write(make(kb))
    return files


COMMON = dict(default_action="tempfail", sink_dump=False,
              postfix_main={"smtpd_client_connection_count_limit": "0", "smtpd_client_connection_rate_limit": "0"})


def passthrough_suite(args, sizes):
    null_milter = os.environ.get("CLLAVIO_NULL_MILTER", os.path.join(ROOT, "build", "bench", "null-milter"))
    configs = {
        "postfix": dict(milter=None),
        "null": dict(milter="unix", milter_command=[null_milter, "{socket}"]),
        "cllavio-unix": dict(milter="unix"),
        "cllavio-inet": dict(milter="inet"),
        "cllavio-policy": dict(milter="unix", orgs={"bench": ORG_POLICY}),
    }
    if args.baseline:
        base = [args.baseline, "-c", "{config}"]
        configs["base-unix"] = dict(milter="unix", milter_command=base)
        configs["base-policy"] = dict(milter="unix", milter_command=base, orgs={"bench": ORG_POLICY})
    harnesses = {}
    try:
        for name, kw in configs.items():
            harnesses[name] = harness.Harness(**{"orgs": {"bench": ORG}, **COMMON, **kw})
            harnesses[name].start()
        runs = {n: (h, write_files(h, message, sizes, "bench"), "news@bench.example") for n, h in harnesses.items()}
        results, cpu = measure(runs, sizes, args)
        rss = {n: peak_rss_kb(harnesses[n].milter_proc.pid) for n in configs if n != "postfix"}
        report("pass-through", configs, sizes, results, cpu, args, "postfix")
        print("peak RSS: " + ", ".join(f"{n} {kb / 1024:.1f} MB" for n, kb in rss.items()))
    finally:
        for h in harnesses.values():
            h.close()


def tracking_suite(args, sizes):
    alone = harness.Harness(orgs={"bench": ORG}, milter=None, **COMMON)
    tracked = harness.Harness(orgs={"bench": ORG, "track": ORG_TRACKED}, milter="unix", secrets=KEY, **COMMON)
    base = None
    if args.baseline:
        base = harness.Harness(orgs={"bench": ORG, "track": ORG_TRACKED}, milter="unix", secrets=KEY, **COMMON,
                               milter_command=[args.baseline, "-c", "{config}"])
    try:
        for h in (alone, tracked, base):
            if h:
                h.start()
        runs = {
            "postfix": (alone, write_files(alone, tracked_message, sizes, "html"), "news@bench.example"),
            "untracked": (tracked, write_files(tracked, tracked_message, sizes, "html"), "news@bench.example"),
            "tracked": (tracked, write_files(tracked, tracked_message, sizes, "html"), "news@track.example"),
        }
        if base:
            runs["base-untracked"] = (base, write_files(base, tracked_message, sizes, "html"), "news@bench.example")
            runs["base-tracked"] = (base, write_files(base, tracked_message, sizes, "html"), "news@track.example")
        results, cpu = measure(runs, sizes, args)
        report("tracking", runs, sizes, results, cpu, args, "untracked")
        rec = tracked.ctl_messages("--org", "track", "--limit", "1")
        links = len(rec[0]["tracking"]["links"]) if rec else 0
        print(f"links tracked per message at {sizes[-1]} KB: {links}; "
              f"cllavio {describe_memory(tracked.milter_proc.pid)}")
    finally:
        for h in (base, tracked, alone):
            if h:
                h.close()


def events_suite(args, sizes):
    """The same mail through cllavio-milter with its events going to a local HTTPS API
    that answers ("api-up") and to one that never answers ("api-hanging"): SMTP must not
    notice. Also prints how many events reached the answering API."""
    harnesses = {}
    try:
        for name in ("api-up", "api-hanging"):
            harnesses[name] = h = harness.Harness(
                orgs={"bench": ORG}, milter="unix", **COMMON, settings={"api.timeout_ms": 30000},
                api=dict(signing_secret=b"bench-signing-secret-0123", org_keys={"bench": "bench-key"}))
            if name == "api-hanging":
                h.api.fail_mode = "hang"
            h.start()
        runs = {n: (h, write_files(h, message, sizes, "bench"), "news@bench.example") for n, h in harnesses.items()}
        results, cpu = measure(runs, sizes, args)
        report("events", runs, sizes, results, cpu, args, "api-up")
        up = harnesses["api-up"].api
        up.wait_for(lambda: False, 5)  # let the last batches arrive
        print(f"events accepted by api-up: {len(up.distinct_event_ids())} distinct ids "
              f"({len(up.events)} deliveries, {len(up.posts())} requests); api-hanging queued: "
              f"{json.loads(harnesses['api-hanging'].ctl('outbox', 'stats', '--json').stdout)['queued']}")
    finally:
        for h in harnesses.values():
            h.close()


def delivery_suite(args, sizes):
    """The same mail with the log follower off and on: SMTP must not notice it."""
    harnesses = {}
    try:
        for name in ("follower-off", "follower-on"):
            harnesses[name] = h = harness.Harness(orgs={"bench": ORG}, milter="unix", **COMMON)
            if name == "follower-on":
                h.milter.write_config(settings={"delivery.log": h.maillog_path})
            h.start()
        runs = {n: (h, write_files(h, message, sizes, "bench"), "news@bench.example") for n, h in harnesses.items()}
        results, cpu = measure(runs, sizes, args)
        report("delivery follower", runs, sizes, results, cpu, args, "follower-off")
        on = harnesses["follower-on"]
        time.sleep(2)
        follow = json.loads(on.ctl("delivery", "follow", "--json").stdout)
        stats = json.loads(on.ctl("delivery", "stats", "--json").stdout.splitlines()[0])
        print(f"follower-on: {follow['status'].get('lines')} log lines read, {follow['status'].get('applied')} applied; "
              f"{stats['delivered']} of {stats['recipients']} recipients delivered, {stats['pending']} pending; "
              f"cllavio {describe_memory(on.milter_proc.pid)}")
    finally:
        for h in harnesses.values():
            h.close()


def rcpt_latencies(h, n_rcpts: int, sessions: int = 4, per_txn: int = 10) -> list[float]:
    """Seconds per RCPT TO command (client side) over n_rcpts RCPTs: `sessions` parallel
    smtplib sessions, transactions of per_txn RCPTs each, ended by RSET (the reservations
    are given back)."""
    import smtplib
    import threading
    out, lock, errors = [], threading.Lock(), []
    per_session = n_rcpts // sessions

    def run(k):
        got = []
        try:
            with smtplib.SMTP("127.0.0.1", h.smtp_port, timeout=60) as s:
                s.ehlo("bench.cllavio-it.test")
                done = 0
                while done < per_session:
                    s.mail("news@bench.example")
                    for i in range(min(per_txn, per_session - done)):
                        t0 = time.perf_counter()
                        code, _ = s.rcpt(f"r{k}-{done}@example.net")
                        got.append(time.perf_counter() - t0)
                        if code != 250:
                            raise RuntimeError(f"RCPT refused: {code}")
                        done += 1
                    s.rset()
        except Exception as e:
            errors.append(e)
        with lock:
            out.extend(got)
    threads = [threading.Thread(target=run, args=(k,)) for k in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    if errors:
        raise errors[0]
    return out


def percentile(values, q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    import math
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(q / 100.0 * len(v)) - 1))]


def quota_suite(args, sizes):
    """cllavio-policy with the local ledger vs the Redis ledger, in the same run."""
    from redis_server import RedisServer
    redis = RedisServer()
    harnesses = {}
    try:
        redis.start()
        for name, settings in (("policy-local", {"quota.backend": "local"}),
                               ("policy-redis", {"quota.backend": "redis", "redis.url": redis.url})):
            harnesses[name] = h = harness.Harness(orgs={"bench": ORG_POLICY}, milter="unix", settings=settings,
                                                  **COMMON)
            h.start()
        runs = {n: (h, write_files(h, message, sizes, "bench"), "news@bench.example") for n, h in harnesses.items()}
        results, cpu = measure(runs, sizes, args)
        report("quota backend", runs, sizes, results, cpu, args, "policy-local")
        for kb in sizes:
            loc, red = cpu[("policy-local", kb)], cpu[("policy-redis", kb)]
            ratio = statistics.median(r / b for r, b in zip(red, loc))
            print(f"{kb:>4}KB milter CPU per message, redis / local: {ratio:.2f} (median of paired repetitions)")
        lat = {n: [] for n in harnesses}
        for rep in range(args.reps):
            for name, h in harnesses.items():
                lat[name] += rcpt_latencies(h, args.rcpts)
        print(f"\nRCPT TO latency (client side, smtplib through Postfix; {args.rcpts} RCPTs x {args.reps} "
              f"repetitions per configuration, 4 parallel sessions, 10 RCPTs then RSET)")
        print(f"{'configuration':<14} {'n':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for name, v in lat.items():
            print(f"{name:<14} {len(v):>6} {percentile(v, 50) * 1e3:8.2f} {percentile(v, 90) * 1e3:8.2f} "
                  f"{percentile(v, 99) * 1e3:8.2f} {max(v) * 1e3:8.2f}")
        log_key = "cllavio:quota:{bench}:log"
        n = redis.command("ZCARD", log_key)
        mem = {k: redis.command("MEMORY", "USAGE", k) or 0 for k in redis.keys("cllavio:quota:{bench}:*")}
        print(f"redis: {n} charged messages in {log_key}; keys: " +
              ", ".join(f"{k.rsplit(':', 1)[1]} {v / 1024:.1f} KiB" for k, v in sorted(mem.items())) +
              (f"; {sum(mem.values()) / n:.0f} bytes per charged message" if n else ""))
        stats = redis.command("INFO", "commandstats")
        import re
        m = re.search(r"cmdstat_evalsha:calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)", stats)
        if m:  # the RCPT latency runs' reserves and releases included
            print(f"redis: {m.group(1)} EVALSHA calls in all, {m.group(3)} us of Redis CPU each")
        print(f"cllavio (redis) {describe_memory(harnesses['policy-redis'].milter_proc.pid)}")
    finally:
        for h in harnesses.values():
            h.close()
        redis.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", choices=["passthrough", "tracking", "events", "delivery", "quota", "all"], default="all")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--sizes", default="5,50", help="message sizes in KiB, comma separated")
    ap.add_argument("--rcpts", type=int, default=2000, help="quota suite: RCPTs timed per configuration and repetition")
    ap.add_argument("--baseline", help="another cllavio-milter binary (an earlier build) measured beside this one")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.suite in ("passthrough", "all"):
        passthrough_suite(args, sizes)
    if args.suite in ("tracking", "all"):
        tracking_suite(args, sizes)
    if args.suite in ("events", "all"):
        events_suite(args, sizes)
    if args.suite in ("delivery", "all"):
        delivery_suite(args, sizes)
    if args.suite in ("quota", "all"):
        quota_suite(args, sizes)


if __name__ == "__main__":
    main()
