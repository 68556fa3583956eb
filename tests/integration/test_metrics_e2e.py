"""Prometheus metrics with the real thing: the milter serves [metrics] listen, a real Prometheus
(Debian's package) scrapes it every second, mail goes through Postfix (tracked newsletters, a
sender over quota, an unsubscribed recipient of a campaign, a sender of no org; the stand-in API
fails the first two event batches; [delivery] follows Postfix's log), and the test
asks Prometheus's query API for rates, increases and histogram quantiles - and runs every
PromQL expression of the Grafana dashboard (contrib/grafana/cllavio-milter.json) against it.

The traffic goes in two rounds with scrapes in between: rate() and increase() need two
samples of a series in the window, and a series may first appear with the first message."""

import json
import math
import os
import re
import tempfile
import smtplib
import subprocess
import time
import unittest

import grafana_dashboard
import harness
from common import ACME_NET, ORG_ACME_CAMPAIGNS, REPO, TRACKING_KEY, HarnessCase, plain_message
from prometheus import PromQLError

ORG_QUOTA = """id = "quotaco"
domains = ["quota.example"]
networks = ["127.0.0.5/32"]
[quota]
messages = [{ per = "1h", max = 1 }]
"""
QUOTA_NET, STRANGER_NET = "127.0.0.5", "127.0.0.6"
DOC = os.path.join(REPO, "docs", "metrics.md")
WINDOW = "30s"  # rate() windows: >= 2 samples at scrape_interval 1s, the whole test fits in it
# Steps Postfix waits for. There is no CONNECT step with milter protocol 6 (the client comes
# with MAIL's macros): its series exists and stays at zero.
STEPS = ("mail", "rcpt", "eom")
HTML = ('<html><body><p>News</p><a href="https://acme.example/offer?id=7">Offer</a></body></html>\r\n')

# Dashboard panels about things this test does: their queries must return data.
PANELS_WITH_DATA = {"Messages / s", "Refused / s", "Outbox events", "Oldest outbox event", "Dead letters",
                    "Version", "Messages by action", "Messages by org", "Tracking outcomes",
                    "Policy refusals by reason", "Quota use", "Outbox depth", "Oldest outbox event age",
                    "Milter step latency p50 / p95 / p99", "Milter step latency (mean)",
                    "Rewrite latency p50 / p95 / p99", "Store map used", "Store map used over time",
                    "API requests by status", "API error ratio", "Delivery outcomes"}


def html_message(msgid: str, sender: str, rcpt: str) -> bytes:
    return (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: metrics\r\nDate: Mon, 02 Jan 2023 10:00:00 +0000\r\n"
            f"Message-ID: <{msgid}>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            f"{HTML}").encode()


def parse_exposition(text: str) -> dict:
    """The text format as {family: {"type": ..., "help": ..., "samples": [(name, {label: value}, float)]}}.
    Label values are unescaped (\\\\, \\", \\n)."""
    families: dict = {}
    sample_rx = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
    label_rx = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            _, kind, name, rest = (line.split(" ", 3) + [""])[:4]
            families.setdefault(name, {"samples": []})[kind.lower()] = rest
            continue
        if line.startswith("#"):
            continue
        m = sample_rx.match(line)
        if not m:
            raise AssertionError(f"not a sample line: {line!r}")
        name, body, value = m.group(1), m.group(3) or "", m.group(4)
        labels, pos = {}, 0
        while pos < len(body):
            lm = label_rx.match(body, pos)
            if not lm:
                raise AssertionError(f"bad labels in {line!r}")
            labels[lm.group(1)] = re.sub(r'\\(.)', lambda e: "\n" if e.group(1) == "n" else e.group(1), lm.group(2))
            pos = lm.end()
        family = re.sub(r'_(bucket|sum|count)$', "", name) if re.sub(r'_(bucket|sum|count)$', "", name) in families \
            else name
        families.setdefault(family, {"samples": []})["samples"].append((name, labels, float(value)))
    return families


class MetricsE2E(HarnessCase):
    harness_kwargs = dict(milter="unix", orgs={"acme": ORG_ACME_CAMPAIGNS, "quotaco": ORG_QUOTA},
                          secrets=TRACKING_KEY, prometheus=True,
                          api=dict(org_keys={"acme": "acme-key", "quotaco": "quotaco-key"}))

    @classmethod
    def setUpClass(cls):
        cls.h = harness.Harness(**cls.harness_kwargs)
        try:
            cls.h.milter.write_config(settings={"delivery.log": cls.h.maillog_path})  # delivery outcomes
            cls.h.start()
            cls.prom = cls.h.prometheus
            cls.prom.wait_up(timeout=20)  # scraped once: every counter at 0, before any mail
            cls.t_start = time.time()
            cls.h.ctl("consent", "unsubscribe", "acme", "gone@example.net")
            cls.h.api.fail_next(2, "500")  # the first events wait in the outbox for a few seconds
            cls.refused = []
            cls.traffic(1)
            cls.prom.wait_scrapes(2)
            cls.traffic(2)
            cls.h.wait_delivered(7, timeout=30)  # 3 per round (2 tracked, the stranger's) + quotaco's first
            cls.prom.wait_scrapes(2)
            # The forwarder got through after its backoff (1 s, 2 s): the outbox is empty again.
            cls.prom.wait_query("cllavio_outbox_events == 0 and cllavio_outbox_oldest_seconds == 0", timeout=30)
            # Postfix logged the 7 deliveries; the follower read them.
            cls.prom.wait_query('sum(cllavio_delivery_total{status="delivered"}) == 7', timeout=30)
        except BaseException:
            cls.h.close()
            raise

    @classmethod
    def smtp(cls, source: str) -> smtplib.SMTP:
        s = smtplib.SMTP("127.0.0.1", cls.h.smtp_port, timeout=30, source_address=(source, 0))
        s.ehlo("client.cllavio-it.test")
        return s

    @classmethod
    def traffic(cls, n: int):
        """One round: two tracked newsletters of acme, a campaign to an unsubscribed recipient
        (refused at RCPT), quotaco's message (the first of the test passes, later ones are
        over quota), and a sender of no org."""
        with cls.smtp(ACME_NET) as s:
            for i in range(2):
                s.sendmail("alice@acme.example", ["bob@example.net"],
                           html_message(f"m{n}-{i}@acme.example", "alice@acme.example", "bob@example.net"))
            s.mail("news@acme.example")
            code, text = s.rcpt("gone@example.net")
            cls.refused.append(("suppression", code, text.decode()))
            s.rset()
        with cls.smtp(QUOTA_NET) as s:
            try:
                s.sendmail("bulk@quota.example", ["r@example.net"],
                           plain_message(f"q{n}@quota.example", sender="bulk@quota.example", rcpt="r@example.net"))
            except smtplib.SMTPDataError as e:  # a message quota answers at end of message
                cls.refused.append(("quota", e.smtp_code, e.smtp_error.decode()))
            except smtplib.SMTPRecipientsRefused as e:
                [(code, text)] = e.recipients.values()
                cls.refused.append(("quota at RCPT", code, text.decode()))
        with cls.smtp(STRANGER_NET) as s:
            s.sendmail("who@stranger.example", ["bob@example.net"],
                       plain_message(f"s{n}@stranger.example", sender="who@stranger.example"))

    # ---- helpers

    def values(self, expr: str, by) -> dict:
        return self.prom.values(expr, by)

    # ---- the traffic itself

    def test_traffic_was_refused_as_planned(self):
        kinds = [(k, c) for k, c, _ in self.refused]
        self.assertEqual(kinds, [("suppression", 550), ("suppression", 550), ("quota", 451)], self.refused)

    # ---- Prometheus's view

    def test_messages_rate_by_org_and_action(self):
        rates = self.values(f"sum by (org, action) (rate(cllavio_messages_total[{WINDOW}]))", ("org", "action"))
        for key in (("acme", "accept"), ("unknown", "accept"), ("quotaco", "tempfail")):
            self.assertGreater(rates.get(key, 0), 0, f"{key}: {rates}")
        totals = self.values("sum by (org) (cllavio_messages_total)", "org")
        self.assertEqual(totals.get("acme"), 4.0, totals)  # the refused RCPT made no message
        self.assertEqual(totals.get("unknown"), 2.0, totals)
        self.assertEqual(totals.get("quotaco"), 2.0, totals)

    def test_refusals_increase_by_reason(self):
        inc = self.values(f"sum by (org, reason) (increase(cllavio_policy_refusals_total[1m]))", ("org", "reason"))
        self.assertGreater(inc.get(("acme", "suppression"), 0), 0, inc)
        self.assertGreater(inc.get(("quotaco", "quota"), 0), 0, inc)
        totals = self.values("sum by (org, reason) (cllavio_policy_refusals_total)", ("org", "reason"))
        self.assertEqual(totals.get(("acme", "suppression")), 2.0, totals)
        self.assertEqual(totals.get(("quotaco", "quota")), 1.0, totals)

    def test_tracking_outcomes(self):
        rates = self.values(f"sum by (org, status) (rate(cllavio_tracking_total[{WINDOW}]))", ("org", "status"))
        self.assertGreater(rates.get(("acme", "tracked"), 0), 0, rates)
        self.assertEqual(self.values("sum by (status) (cllavio_tracking_total{org=\"acme\"})", "status")
                         .get("tracked"), 4.0)

    def test_delivery_outcomes(self):
        totals = self.values('sum by (org) (cllavio_delivery_total{status="delivered"})', "org")
        self.assertEqual(totals, {"acme": 4.0, "quotaco": 1.0, "unknown": 2.0})
        self.assertEqual(self.values('sum(cllavio_delivery_total{status!="delivered"})', ())[()], 0)
        rates = self.values(f"sum by (org, status) (rate(cllavio_delivery_total[{WINDOW}]))", ("org", "status"))
        self.assertGreater(rates.get(("acme", "delivered"), 0), 0, rates)

    def test_quota_used(self):
        used = self.values("cllavio_quota_used", ("org", "window"))
        self.assertEqual(used.get(("quotaco", "messages:1h")), 1.0, used)  # one message charged of 1 per hour

    def test_outbox_gauges_follow_the_api(self):
        for name in ("cllavio_outbox_events", "cllavio_outbox_oldest_seconds", "cllavio_dead_letters",
                     "cllavio_store_map_used_ratio"):
            r = self.prom.query(name)
            self.assertEqual(len(r), 1, f"{name}: {r}")
        ratio = float(self.prom.query("cllavio_store_map_used_ratio")[0]["value"][1])
        self.assertTrue(0 < ratio < 1.0, ratio)
        # While the API answered 500, events waited (and aged); once it took them, both went to 0.
        peak = self.values("max_over_time(cllavio_outbox_events[2m])", ())
        self.assertGreaterEqual(peak[()], 1, peak)
        self.assertGreater(self.values("max_over_time(cllavio_outbox_oldest_seconds[2m])", ())[()], 0)
        self.assertEqual(self.values("cllavio_outbox_events", ())[()], 0)
        self.assertEqual(self.values("cllavio_dead_letters", ())[()], 0)

    def test_api_requests_by_status(self):
        counts = self.values("sum by (status) (cllavio_api_requests_total)", "status")
        self.assertEqual(counts.get("5xx"), 2.0, counts)  # the two injected failures
        self.assertGreaterEqual(counts.get("2xx", 0), 1, counts)
        self.assertEqual(counts.get("error"), 0.0, counts)
        answered = [r["status"] for r in self.h.api.requests if r["status"] is not None]
        self.assertEqual(answered.count(500), 2)
        self.assertLessEqual(counts["2xx"], sum(1 for c in answered if 200 <= c < 300))
        ratio = self.prom.query(f'sum(rate(cllavio_api_requests_total{{status!~"2.."}}[{WINDOW}])) / '
                                f'sum(rate(cllavio_api_requests_total[{WINDOW}]))')
        self.assertTrue(ratio and 0 < float(ratio[0]["value"][1]) < 1, ratio)

    def test_step_latency_quantiles(self):
        for q in (0.5, 0.95, 0.99):
            r = self.prom.query(f"histogram_quantile({q}, sum by (le, step) "
                                f"(rate(cllavio_milter_step_duration_seconds_bucket[{WINDOW}])))")
            got = {s["metric"]["step"]: float(s["value"][1]) for s in r}
            for step in STEPS:
                self.assertIn(step, got, r)
                self.assertTrue(math.isfinite(got[step]) and 0 <= got[step] < 10, f"p{q} {step}: {got[step]}")
        connects = self.values('sum(cllavio_milter_step_duration_seconds_count{step="connect"})', ())
        self.assertEqual(connects.get(()), 0.0, connects)
        r = self.prom.query(f"histogram_quantile(0.95, sum by (le) (rate(cllavio_rewrite_duration_seconds_bucket"
                            f"[{WINDOW}])))")
        self.assertEqual(len(r), 1, r)
        self.assertTrue(math.isfinite(float(r[0]["value"][1])), r)
        # Every rcpt callback was timed: 2 per round for acme, 1 each for the others.
        count = self.values("sum by (step) (cllavio_milter_step_duration_seconds_count)", "step")
        self.assertEqual(count.get("rcpt"), 10.0, count)

    def test_range_query_shows_the_counts_over_time(self):
        end = time.time()
        [series] = self.prom.query_range("sum(cllavio_messages_total)", self.t_start, end, 0.5)
        values = [float(v) for _, v in series["values"]]
        self.assertEqual(values[0], 0, values)  # the scrape before any mail
        self.assertEqual(values[-1], 8, values)  # 4 per round: acme's 2, quotaco's, the stranger's
        self.assertEqual(values, sorted(values), "a counter never goes down")
        self.assertIn(4, values, "the scrapes between the rounds saw the first round")
        [rate] = self.prom.query_range(f"sum(rate(cllavio_messages_total[{WINDOW}]))", self.t_start, end, 0.5)
        self.assertGreater(max(float(v) for _, v in rate["values"]), 0)

    def test_build_info(self):
        r = self.prom.query("cllavio_build_info == 1")
        self.assertEqual(len(r), 1, r)
        with open(os.path.join(REPO, "CMakeLists.txt")) as f:
            version = re.search(r"project\(cllavio-milter VERSION (\S+)", f.read()).group(1)
        self.assertEqual(r[0]["metric"]["version"], version)

    def test_every_dashboard_query_is_accepted(self):
        dash = grafana_dashboard.load()
        self.assertEqual(grafana_dashboard.structure_problems(dash), [])
        empty, errors = [], []
        for title, ref, expr in grafana_dashboard.exprs(dash, rate_interval=WINDOW):
            try:
                result = self.prom.query(expr)
            except PromQLError as e:
                errors.append(f"{title} {ref}: {e}")
                continue
            if title in PANELS_WITH_DATA and not result:
                empty.append(f"{title} {ref}: {expr}")
        self.assertEqual(errors, [])
        self.assertEqual(empty, [], "panels about this test's traffic returned no data")

    # ---- the endpoint itself

    def test_endpoint_exposes_no_addresses_and_bounded_labels(self):
        text = self.h.scrape_metrics()
        families = parse_exposition(text)
        for name, fam in families.items():
            if not name.startswith("cllavio_"):
                continue
            self.assertIn("type", fam, f"{name}: no # TYPE")
            self.assertIn("help", fam, f"{name}: no # HELP")
            if fam["type"] == "counter":
                self.assertTrue(name.endswith("_total"), name)
        for name, labels, _ in (s for fam in families.values() for s in fam["samples"]):
            for k, v in labels.items():
                self.assertNotIn("@", v, f"{name}{{{k}={v!r}}}: an address in a label")
            if "org" in labels:
                self.assertIn(labels["org"], {"acme", "quotaco", "unknown", "other", "overflow", ""}, name)
        exposed = {n for n in families if n.startswith("cllavio_")}
        self.assertEqual(exposed, doc_metrics(), "docs/metrics.md's table and the endpoint differ")
        for addr in ("alice@acme.example", "bob@example.net", "gone@example.net", "who@stranger.example"):
            self.assertNotIn(addr, text)


def doc_metrics() -> set[str]:
    """The metric names of docs/metrics.md's table."""
    with open(DOC) as f:
        return set(re.findall(r"^\| `(cllavio_[a-z_]+)` \|", f.read(), re.M))


def promtool_check_rules(test: unittest.TestCase, rules_text: str):
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write(rules_text)
    try:
        r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True, timeout=30)
    finally:
        os.unlink(f.name)
    test.assertEqual(r.returncode, 0, r.stdout + r.stderr)
    return r.stdout


class DashboardAndDocs(unittest.TestCase):
    """The dashboard's JSON and docs/metrics.md on their own (no daemon): structure, and
    PromQL syntax (promtool)."""

    def test_structure(self):
        dash = grafana_dashboard.load()
        self.assertEqual(grafana_dashboard.structure_problems(dash), [])
        titles = {p["title"] for p in grafana_dashboard.panels(dash)}
        self.assertTrue(PANELS_WITH_DATA <= titles, PANELS_WITH_DATA - titles)
        exprs = [e for _, _, e in grafana_dashboard.exprs(dash)]
        for metric in ("cllavio_messages_total", "cllavio_tracking_total", "cllavio_policy_refusals_total",
                       "cllavio_quota_used", "cllavio_outbox_events", "cllavio_outbox_oldest_seconds",
                       "cllavio_dead_letters", "cllavio_api_requests_total", "cllavio_delivery_total",
                       "cllavio_milter_step_duration_seconds_bucket", "cllavio_rewrite_duration_seconds_bucket",
                       "cllavio_store_map_used_ratio", "cllavio_build_info"):
            self.assertTrue(any(metric in e for e in exprs), metric)

    def test_promtool_parses_every_query(self):
        dash = grafana_dashboard.load()
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:panel{i}", "expr": e}
            for i, (_, _, e) in enumerate(grafana_dashboard.exprs(dash))]}]}
        promtool_check_rules(self, json.dumps(rules))  # JSON is YAML

    def test_doc_alert_rules_parse(self):
        with open(DOC) as f:
            text = f.read()
        [rules] = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "groups:" in b]
        out = promtool_check_rules(self, rules)
        # every rule in the doc is one promtool found
        self.assertIn(f"SUCCESS: {rules.count('- alert:')} rules found", out)
        self.assertGreaterEqual(rules.count("- alert:"), 8)
        self.assertEqual(len(doc_metrics()), 18, doc_metrics())


if __name__ == "__main__":
    unittest.main()
