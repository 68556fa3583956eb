"""Quotas shared through Redis ([quota] backend = "redis"), end to end: two cllavio-milter
daemons with separate stores and one Redis (redis_server.RedisServer, persisted: AOF with
appendfsync always), each attached to its own smtpd service of one Postfix.

Why one Postfix with two smtpd services rather than two Postfix instances: what is shared
is the milters' ledger, not Postfix; a second service in master.cf
(`127.0.0.1:PORT2 inet ... smtpd -o smtpd_milters=unix:<host 2's socket>`) gives each
daemon its own SMTP entry point with half the processes and start-up time. Both services
relay to the same sink, which counts what was accepted.

What is checked: exact message and recipient quotas with 10 parallel sessions on each
service; Redis stopped in the middle of a run and started again, for each
[quota] on_backend_error (local: each host at most limit / hosts, loudly; tempfail:
451 4.3.0; accept: everything) with every transaction bounded in time, and the shared
count including what was charged during the outage once the breaker has closed; a Redis
answering slower than timeout_ms (SlowProxy): the breaker opens (metric, log line),
RCPTs stop waiting on it, and it closes again; cllavioctl quota show/reset against Redis
(TCP, unix socket, AUTH); the daemon refusing to start on a bad [redis] url.

Timeouts: redis.timeout_ms is 250 here, not the default 50: on this 2-CPU machine shared
with other builds, 20 parallel sessions once made three Redis calls in a row exceed 50 ms
(EVALSHA timeouts), the breaker opened and the hosts counted limit / hosts each, as the
local fallback is meant to: right, but not what the exactness tests measure (they check
that the breaker stayed closed, and say so when it did not).
Time bound of one transaction while Redis is down or slow: a ledger call costs at most
connect_timeout_ms + timeout_ms (200 + 250 ms); `breaker_failures` (3) of them open the
breaker, after which no call waits: < 1.35 s even if all three land in one transaction;
asserted < 3 s (TXN_BOUND): the rest is the machine's own pace, and the timeouts are wall clock
(a clean-checkout CI run under ASan+UBSan, three daemon tests at a time on 2 CPUs, once saw four
transactions of 2.3 s right after the stop, where a quiet run takes 10 ms). What the bound
catches is a call without a timeout: a connect or read that waits on the dead Redis for the
kernel's retries or forever. The slow proxy delays replies by 800 ms (> timeout_ms).
"""

import json
import os
import re
import smtplib
import tempfile
import threading
import time
import unittest
import urllib.request

import common  # noqa: F401  (sys.path)
import harness
from milter_daemon import MilterDaemon
from procs import free_port
from redis_server import RedisServer, SlowProxy

PREFIX = "cllavio:quota:"
TXN_BOUND = 3.0
HOSTS = 2
BASE = {"quota.backend": "redis", "quota.on_backend_error": "local", "quota.hosts": HOSTS,
        "quota.breaker_failures": 3, "quota.breaker_retry_ms": 300,
        "redis.timeout_ms": 250, "redis.connect_timeout_ms": 200, "redis.pool_size": 8}


def org(name: str, *, messages=None, recipients=None) -> str:
    lines = [f'id = "{name}"', f'domains = ["{name}.example"]', 'networks = ["127.0.0.1/32"]', "[quota]"]
    if messages:
        lines.append(f'messages = [{{ per = "1h", max = {messages} }}]')
    if recipients:
        lines.append(f'recipients = [{{ per = "1h", max = {recipients} }}]')
    return "\n".join(lines) + "\n"


ORGS = {
    "msgco": org("msgco", messages=50),
    "rcptco": org("rcptco", recipients=60),
    "outlocal": org("outlocal", messages=20),
    "outtempfail": org("outtempfail", messages=20),
    "outaccept": org("outaccept", messages=20),
    "slowco": org("slowco", messages=1000),
    "ctlco": org("ctlco", messages=3, recipients=10),
}


def message(msgid: str, sender: str, rcpts) -> bytes:
    return (f"From: <{sender}>\r\nTo: {', '.join('<' + r + '>' for r in rcpts)}\r\nSubject: shared quota\r\n"
            f"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <{msgid}>\r\n\r\nHello\r\n").encode()


class Txn:
    """One SMTP transaction's outcome: RCPT replies, DATA reply (None: no recipient left),
    when it started and ended (monotonic)."""

    def __init__(self, host: int, rcpts: dict, data, start: float, end: float):
        self.host, self.rcpts, self.data, self.start, self.end = host, rcpts, data, start, end

    @property
    def accepted(self) -> bool:
        return self.data is not None and self.data[0] == 250

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def refusals(self) -> list:
        out = [v for v in self.rcpts.values() if v[0] >= 400]
        if self.data is not None and self.data[0] >= 400:
            out.append(self.data)
        return out

    def __repr__(self):
        return f"Txn(host={self.host}, rcpts={self.rcpts}, data={self.data}, {self.seconds:.3f}s)"


def key(org_id: str, which: str) -> str:
    return f"{PREFIX}{{{org_id}}}:{which}"


def metric(text: str, name: str, labels: str | None = None) -> float | None:
    """A sample of the exposition text: name{labels} (labels: the exact label text, e.g.
    'mode="local"'; "" or None for a sample without labels); with labels=None and no such
    sample, the sum over every label set of name. None if absent."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        samples[series] = float(value)
    want = f"{name}{{{labels}}}" if labels else name
    if want in samples:
        return samples[want]
    if labels is None:
        vals = [v for k, v in samples.items() if k.startswith(name + "{")]
        return sum(vals) if vals else None
    return None


class SharedQuotaTwoHosts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer(persist=True)
        cls.addClassCleanup(cls.redis.close)
        cls.redis.start()
        cls.metrics_ports = [free_port(), free_port()]
        s1, s2 = cls.host_settings(0), cls.host_settings(1)
        cls.h = harness.Harness(milter="unix", orgs=ORGS, settings=s1)
        cls.addClassCleanup(cls.h.close)
        host2_dir = os.path.join(cls.h.dir, "host2")
        os.makedirs(host2_dir, mode=0o755)
        cls.m2 = MilterDaemon(host2_dir, kind="unix", orgs=ORGS, settings=s2)
        cls.addClassCleanup(cls.m2.stop)
        cls.port2 = free_port()
        cls.h.postfix.extra_services = [
            f"127.0.0.1:{cls.port2} inet n - n - - smtpd -o smtpd_milters={cls.m2.postfix_address}"]
        cls.h.postfix.write_config()
        cls.m2.start()
        cls.h.start()
        cls.milters = [cls.h.milter, cls.m2]
        cls.ports = [cls.h.smtp_port, cls.port2]

    @classmethod
    def host_settings(cls, host: int) -> dict:
        return {**BASE, "redis.url": cls.redis.url, "metrics.listen": f"127.0.0.1:{cls.metrics_ports[host]}"}

    # ------------------------------------------------------------------ helpers

    def configure(self, mode="local", url=None, hosts=(0, 1)):
        """[quota] on_backend_error and [redis] url of the given hosts (restart when they change)."""
        url = url or self.redis.url
        for i in hosts:
            m = self.milters[i]
            cfg = m.main_config()
            if cfg["quota"]["on_backend_error"] != mode or cfg["redis"]["url"] != url:
                m.write_config(settings={"quota.on_backend_error": mode, "redis.url": url})
                m.restart()

    def ensure_redis(self):
        if not self.redis.running():
            self.redis.start()

    def transaction(self, s: smtplib.SMTP, host: int, sender: str, rcpts, msgid: str) -> Txn:
        t0 = time.monotonic()
        s.mail(sender)
        got = {}
        for r in rcpts:
            code, text = s.rcpt(r)
            got[r] = (code, text.decode())
        data = None
        if any(c == 250 for c, _ in got.values()):
            code, text = s.data(message(msgid, sender, [r for r in rcpts if got[r][0] == 250]))
            data = (code, text.decode())
        if data is None or data[0] != 250:
            s.rset()
        return Txn(host, got, data, t0, time.monotonic())

    def session(self, host: int, sender: str, plan, tag: str, out: list, lock: threading.Lock, pause: float = 0):
        """One SMTP session on host's smtpd: one transaction per entry of plan (a list of
        recipient lists); outcomes appended to out."""
        with smtplib.SMTP("127.0.0.1", self.ports[host], timeout=30) as s:
            s.ehlo("client.cllavio-it.test")
            for i, rcpts in enumerate(plan):
                t = self.transaction(s, host, sender, rcpts, f"{tag}-{i}@cllavio-it.test")
                with lock:
                    out.append(t)
                if pause:
                    time.sleep(pause)

    def run_sessions(self, specs, timeout=120) -> list[Txn]:
        """specs: [(host, sender, plan, tag)] run in parallel threads; every outcome."""
        out, lock, errors = [], threading.Lock(), []

        def run(*a):
            try:
                self.session(*a, out, lock)
            except Exception as e:  # reported by the test thread
                errors.append(e)
        threads = [threading.Thread(target=run, args=spec) for spec in specs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout)
        self.assertFalse(any(t.is_alive() for t in threads), "an SMTP session hangs")
        self.assertEqual(errors, [])
        return out

    def send_one(self, host: int, sender: str, tag: str, rcpts=("r@example.net",)) -> Txn:
        return self.run_sessions([(host, sender, [list(rcpts)], tag)])[0]

    def show(self, org_id: str, host: int = 0) -> dict:
        r = self.milters[host].ctl("quota", "show", org_id, "--json", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def used(self, org_id: str, kind="messages", host: int = 0) -> int:
        [w] = [w for w in self.show(org_id, host)["windows"] if w["kind"] == kind]
        return w["used"]

    def charged_in_redis(self, org_id: str) -> int:
        """Messages charged in Redis: members of :log that were not given back (:gone)."""
        return self.redis.command("ZCARD", key(org_id, "log")) - self.redis.command("ZCARD", key(org_id, "gone"))

    def scrape(self, host: int) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_ports[host]}/metrics", timeout=10) as r:
            return r.read().decode()

    def wait_metric(self, host: int, name: str, want: float, labels=None, timeout: float = 5) -> float | None:
        """Scrape until name{labels} == want (the breaker logs its change just before it
        updates the metrics); returns the last value seen."""
        deadline = time.monotonic() + timeout
        while True:
            v = metric(self.scrape(host), name, labels)
            if v == want or time.monotonic() > deadline:
                return v
            time.sleep(0.05)

    def delivered_from(self, sender: str):
        return self.h.delivered(match=lambda d: d.sender == sender)

    def log_offsets(self) -> list[int]:
        return [len(m.log()) for m in self.milters]

    def assertBreakerStayedClosed(self, offsets):
        """Exact counts hold only while Redis is asked: a breaker that opened (a call slower
        than timeout_ms on a loaded machine) lets each host take limit / hosts on its own."""
        for host, (m, off) in enumerate(zip(self.milters, offsets)):
            opened = re.findall(r".*quota backend unreachable.*", m.log()[off:])
            self.assertEqual(opened, [], f"host {host}'s breaker opened during an exactness test: Redis calls took "
                                         f"longer than redis.timeout_ms, so exact counts cannot be expected")

    def assertBounded(self, txns):
        slow = [t for t in txns if t.seconds >= TXN_BOUND]
        if slow:  # the milters' logs say when the breaker opened and what the calls met
            logs = "\n".join(f"--- milter {h} log (tail) ---\n{m.log()[-3000:]}" for h, m in enumerate(self.milters))
            self.fail(f"transactions over {TXN_BOUND} s: {slow}\n{logs}")

    # ------------------------------------------------------------------ exact shared quotas

    def test_messages_exact_across_two_hosts(self):
        self.configure()
        sender = "bulk@msgco.example"
        offsets = self.log_offsets()
        specs = [(host, sender, [["r@example.net"]] * 5, f"m{host}-{n}") for host in (0, 1) for n in range(10)]
        txns = self.run_sessions(specs)
        self.assertBreakerStayedClosed(offsets)
        self.assertEqual(len(txns), 100)
        accepted = [t for t in txns if t.accepted]
        refused = [t for t in txns if not t.accepted]
        self.assertEqual(len(accepted), 50, [t for t in txns if not t.accepted][:3])
        self.assertTrue({t.host for t in accepted} == {0, 1}, "both hosts accepted some")
        for t in refused:
            [(code, text)] = t.refusals()
            self.assertEqual(code, 451, t)
            self.assertRegex(text, r"^4\.7\.1 Sending quota of msgco exceeded \(50 messages per hour\); "
                                   r"retry after (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC")
        self.h.wait_delivered(50, timeout=60, match=lambda d: d.sender == sender)
        time.sleep(1)  # nothing more arrives
        self.assertEqual(len(self.delivered_from(sender)), 50)
        self.assertEqual(self.redis.command("ZCARD", key("msgco", "log")), 50)
        self.assertEqual(self.charged_in_redis("msgco"), 50)
        for host in (0, 1):  # each daemon reads the shared count
            shown = self.show("msgco", host)
            self.assertEqual(shown["backend"], "redis")
            self.assertEqual(shown["windows"], [{"kind": "messages", "per": "hour", "used": 50, "max": 50}])
            self.assertEqual(shown["reserved"], 0)

    def test_recipients_exact_across_two_hosts(self):
        self.configure()
        sender = "bulk@rcptco.example"
        offsets = self.log_offsets()

        def plan(host, n):  # 4 messages of 1-3 recipients
            return [[f"r{host}-{n}-{i}-{j}@example.net" for j in range(1 + (n + i + host) % 3)] for i in range(4)]
        specs = [(host, sender, plan(host, n), f"r{host}-{n}") for host in (0, 1) for n in range(10)]
        txns = self.run_sessions(specs)
        self.assertBreakerStayedClosed(offsets)
        self.assertEqual(len(txns), 80)
        ok_rcpts = [r for t in txns for r, (c, _) in t.rcpts.items() if c == 250]
        refused = [(r, c, x) for t in txns for r, (c, x) in t.rcpts.items() if c != 250]
        n_msgs = sum(1 for t in txns if t.accepted)
        self.h.wait_delivered(n_msgs, timeout=60, match=lambda d: d.sender == sender)
        time.sleep(1)
        got = self.delivered_from(sender)
        diag = (f"RCPTs accepted {len(ok_rcpts)}, delivered {sum(len(d.rcpts) for d in got)} in {len(got)} "
                f"messages; DATA replies {sorted(set(t.data for t in txns if t.data))}; "
                f"quota show {[self.show('rcptco', h) for h in (0, 1)]}")
        self.assertLessEqual(len(ok_rcpts), 60, diag)
        # every reservation becomes a charge (no transaction is abandoned): the window fills up
        self.assertEqual(len(ok_rcpts), 60)
        self.assertTrue(refused)
        for r, code, text in refused:
            self.assertEqual(code, 451, (r, text))
            self.assertRegex(text, r"^4\.7\.1 Sending quota of rcptco exceeded \(60 recipients per hour\); retry after")
        self.assertTrue(all(t.accepted for t in txns if t.data is not None), [t for t in txns if t.data][:3])
        self.assertEqual(sorted(r for d in got for r in d.rcpts), sorted(ok_rcpts))
        self.assertEqual(self.charged_in_redis("rcptco"), n_msgs)
        for host in (0, 1):
            self.assertEqual(self.used("rcptco", "recipients", host), 60)
            self.assertEqual(self.show("rcptco", host)["reserved"], 0)

    # ------------------------------------------------------------------ Redis down in the middle of a run

    def outage(self, mode: str, org_id: str):
        """Sessions on both hosts; Redis stopped once 6 messages are accepted, started again
        when every session is done. Returns (txns, t_stop, shared count after, charges replayed
        by both hosts). Checks on the way: every transaction bounded in time, the breaker's
        warning (naming the mode) and notice (with the replayed count, as the metric says)."""
        self.configure(mode)
        self.addCleanup(self.ensure_redis)  # the next tests need it, whatever happens here
        sender = f"bulk@{org_id}.example"
        offsets = [len(m.log()) for m in self.milters]
        replayed0 = [metric(self.scrape(h), "cllavio_quota_backend_replayed_total") or 0 for h in (0, 1)]
        self.assertEqual(self.charged_in_redis(org_id), 0)
        out, lock, errors = [], threading.Lock(), []

        def run(host, n):
            try:  # 2 sessions per host, 9 messages each, a little apart
                self.session(host, sender, [["r@example.net"]] * 9, f"{org_id}-{host}-{n}", out, lock, pause=0.05)
            except Exception as e:
                errors.append(e)
        threads = [threading.Thread(target=run, args=(host, n)) for host in (0, 1) for n in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while sum(1 for t in list(out) if t.accepted) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertGreaterEqual(sum(1 for t in list(out) if t.accepted), 6)
        self.redis.stop()
        t_stop = time.monotonic()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads), "an SMTP session hangs")
        self.assertEqual(errors, [])
        self.assertEqual(len(out), 36)
        self.assertBounded(out)
        for m, off in zip(self.milters, offsets):  # the breaker opened, loudly, on each host
            harness._wait_log(m.log, rf"warning: quota backend unreachable: .*on_backend_error={mode}", 10,
                              "milter log", off)
        offsets = [len(m.log()) for m in self.milters]
        self.redis.start()  # same port, persisted: what was charged before the stop is there
        replayed = 0
        for host, (m, off) in enumerate(zip(self.milters, offsets)):
            n = int(harness._wait_log(m.log, r"quota backend back after \S+; replayed (\d+) charges?", 15,
                                      "milter log", off).group(1))
            self.assertEqual(self.wait_metric(host, "cllavio_quota_backend_up", 1), 1)
            got = self.wait_metric(host, "cllavio_quota_backend_replayed_total", replayed0[host] + n) or 0
            self.assertEqual(got - replayed0[host], n, f"host {host}: the metric and the log line disagree")
            replayed += n
        return out, t_stop, self.charged_in_redis(org_id), replayed

    def after_stop(self, txns, t_stop, host=None):
        return [t for t in txns if t.start >= t_stop and (host is None or t.host == host)]

    def test_outage_local_each_host_takes_its_share(self):
        txns, t_stop, shared, replayed = self.outage("local", "outlocal")
        accepted = [t for t in txns if t.accepted]
        for host in (0, 1):
            during = [t for t in self.after_stop(txns, t_stop, host) if t.accepted]
            self.assertLessEqual(len(during), 20 // HOSTS, f"host {host} during the outage")
        for t in txns:
            if not t.accepted:
                [(code, text)] = t.refusals()
                self.assertEqual(code, 451, t)
                self.assertIn("4.7.1 Sending quota of outlocal exceeded", text)
        self.assertTrue(any(not t.accepted for t in self.after_stop(txns, t_stop)), "the local share was reached")
        self.assertEqual(shared, len(accepted))  # replayed: the shared count has every accepted message
        self.assertEqual(self.used("outlocal", host=1), len(accepted))
        self.assertGreaterEqual(replayed, len([t for t in self.after_stop(txns, t_stop) if t.accepted]))
        fallbacks = sum(metric(self.scrape(h), "cllavio_quota_backend_fallbacks_total", 'mode="local"') or 0
                        for h in (0, 1))
        self.assertGreater(fallbacks, 0)
        for h in (0, 1):
            self.assertEqual(metric(self.scrape(h), "cllavio_quota_backend_up"), 1)
        if len(accepted) >= 20:  # full: the shared ledger refuses the next one
            t = self.send_one(0, "bulk@outlocal.example", "outlocal-after")
            self.assertEqual(t.refusals()[0][0], 451, t)

    def test_outage_tempfail_refuses_with_430(self):
        txns, t_stop, shared, replayed = self.outage("tempfail", "outtempfail")
        self.assertEqual(replayed, 0)  # nothing was accepted meanwhile
        during = self.after_stop(txns, t_stop)
        self.assertTrue(during)
        for t in during:
            self.assertFalse(t.accepted, t)
            codes = t.refusals()
            self.assertTrue(codes, t)
            self.assertEqual(codes[0][0], 451, t)
            self.assertEqual(codes[0][1], "4.3.0 Sending quota of outtempfail cannot be checked now; try again later")
        self.assertEqual(shared, sum(1 for t in txns if t.accepted))
        t = self.send_one(1, "bulk@outtempfail.example", "outtempfail-after")
        self.assertTrue(t.accepted, t)  # the breaker closed: Redis answers again

    def test_outage_accept_takes_everything_and_counts_it(self):
        txns, t_stop, shared, replayed = self.outage("accept", "outaccept")
        during = self.after_stop(txns, t_stop)
        self.assertTrue(during)
        self.assertTrue(all(t.accepted for t in during), [t for t in during if not t.accepted][:3])
        accepted = sum(1 for t in txns if t.accepted)
        self.assertEqual(shared, accepted)
        self.assertGreater(accepted, 20)  # over the limit, as the mode says
        t = self.send_one(0, "bulk@outaccept.example", "outaccept-after")
        self.assertEqual(t.refusals()[0][0], 451, t)  # the replayed charges count against the limit

    # ------------------------------------------------------------------ a slow Redis

    def test_slow_redis_opens_the_breaker(self):
        proxy = SlowProxy(self.redis.port).start()
        self.addCleanup(self.configure, "local", None, (0,))
        self.addCleanup(proxy.stop)
        self.configure("local", proxy.url, hosts=(0,))
        sender = "bulk@slowco.example"
        self.assertTrue(self.send_one(0, sender, "slow-0").accepted)
        self.assertGreater(proxy.accepted, 0)
        self.assertEqual(metric(self.scrape(0), "cllavio_quota_backend_up"), 1)
        off = len(self.h.milter.log())
        proxy.delay_ms = 800  # every reply later than timeout_ms (250)
        txns = [self.send_one(0, sender, f"slow-1-{i}") for i in range(3)]
        harness._wait_log(self.h.milter.log, r"quota backend unreachable", 10, "milter log", off)
        self.assertEqual(self.wait_metric(0, "cllavio_quota_backend_up", 0), 0)
        self.assertGreater(metric(self.scrape(0), "cllavio_quota_backend_errors_total") or 0, 0)
        # open: RCPTs are answered without waiting on Redis (no script call reaches the proxy)
        before = proxy.requests_matching(b"EVAL")
        rcpt_times = []
        with smtplib.SMTP("127.0.0.1", self.ports[0], timeout=30) as s:
            s.ehlo("client.cllavio-it.test")
            for i in range(5):
                s.mail(sender)
                t0 = time.monotonic()
                code, _ = s.rcpt(f"x{i}@example.net")
                rcpt_times.append(time.monotonic() - t0)
                self.assertEqual(code, 250)
                s.rset()
        self.assertEqual(proxy.requests_matching(b"EVAL"), before, "a script call went to the slow Redis")
        self.assertLess(max(rcpt_times), 0.25, rcpt_times)  # a call that waited would take >= timeout_ms
        txns += [self.send_one(0, sender, f"slow-2-{i}") for i in range(2)]
        self.assertTrue(all(t.accepted for t in txns), txns)  # local mode: well within the share
        self.assertBounded(txns)
        off = len(self.h.milter.log())
        proxy.delay_ms = 0
        harness._wait_log(self.h.milter.log, r"quota backend back", 15, "milter log", off)
        self.assertEqual(self.wait_metric(0, "cllavio_quota_backend_up", 1), 1)
        n = proxy.requests_matching(b"EVAL")
        self.assertTrue(self.send_one(0, sender, "slow-3").accepted)
        self.assertGreater(proxy.requests_matching(b"EVAL"), n)
        self.assertEqual(self.charged_in_redis("slowco"), 1 + len(txns) + 1)  # the local charges were replayed

    # ------------------------------------------------------------------ cllavioctl, configuration

    def test_cllavioctl_show_and_reset_against_redis(self):
        self.configure()
        sender = "bulk@ctlco.example"
        for host, tag in ((0, "c1"), (0, "c2"), (1, "c3")):
            self.assertTrue(self.send_one(host, sender, tag).accepted)
        t = self.send_one(1, sender, "c4")
        self.assertEqual(t.refusals()[0][0], 451, t)
        for host in (0, 1):
            shown = self.show("ctlco", host)
            self.assertEqual((shown["org"], shown["backend"], shown["reserved"]), ("ctlco", "redis", 0))
            self.assertEqual(shown["windows"], [{"kind": "messages", "per": "hour", "used": 3, "max": 3},
                                                {"kind": "recipients", "per": "hour", "used": 3, "max": 10}])
        self.assertTrue(self.redis.keys(f"{PREFIX}{{ctlco}}:*"))
        r = self.m2.ctl("quota", "reset", "ctlco", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.charged_in_redis("ctlco"), 0)
        self.assertEqual(self.used("ctlco", host=0), 0)
        self.assertTrue(self.send_one(0, sender, "c5").accepted)  # at once, no restart
        self.assertEqual(self.used("ctlco", host=1), 1)

    def test_cllavioctl_over_unix_socket_with_auth(self):
        with tempfile.TemporaryDirectory(prefix="cllavio-redis-auth-") as d:
            os.chmod(d, 0o755)
            r = RedisServer(d, password="pw-for-the-test", unix_socket=True)
            m = MilterDaemon(d, kind="unix", orgs={"ctlco": ORGS["ctlco"]},
                             settings={**BASE, "redis.url": r.unix_url}, secrets={"redis": {"password": "pw-for-the-test"}})
            try:
                r.start()
                m.start()  # creates its store (cllavioctl opens an existing one)
                shown = json.loads(m.ctl("quota", "show", "ctlco", "--json").stdout)
                self.assertEqual((shown["backend"], shown["windows"][0]["used"]), ("redis", 0))
                m.write_config(secrets={"redis": {"password": "wrong"}})
                bad = m.ctl("quota", "show", "ctlco", "--json", check=False)
                self.assertNotEqual(bad.returncode, 0, bad.stdout)  # an error, not a silent local answer
                self.assertTrue(bad.stderr.strip())
            finally:
                m.stop()
                r.close()

    def test_bad_url_refuses_to_start_and_a_down_redis_does_not(self):
        with tempfile.TemporaryDirectory(prefix="cllavio-badurl-") as d:
            os.chmod(d, 0o755)
            for bad in ("http://127.0.0.1:6379/0", "redis://127.0.0.1:99999/0", "redis://127.0.0.1:6379/x"):
                m = MilterDaemon(d, kind="unix", orgs={"ctlco": ORGS["ctlco"]},
                                 settings={**BASE, "redis.url": bad})
                with self.subTest(url=bad), self.assertRaises(RuntimeError) as e:
                    m.start()
                m.stop()
                self.assertIn("exited with", str(e.exception))
                self.assertNotIn("exited with 0", str(e.exception))
                self.assertRegex(str(e.exception), r"redis\.url: (expected|invalid)")  # names the key
            # a well-formed url nobody listens on: it starts (the fallback takes over)
            m = MilterDaemon(d, kind="unix", orgs={"ctlco": ORGS["ctlco"]},
                             settings={**BASE, "redis.url": f"redis://127.0.0.1:{free_port()}/0"})
            try:
                m.start()
                self.assertTrue(m.running())
            finally:
                m.stop()


if __name__ == "__main__":
    unittest.main()
