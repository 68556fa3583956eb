"""Quotas, streams and consent through a real Postfix: exact quotas under 10 parallel
sessions, aborted transactions not charged, unsubscribed recipients refused only by
campaign streams (at RCPT TO, or removed at end of message when a header picks the
stream), tracking only with every recipient's consent, List-Unsubscribe headers that
verify, the recipient limit, and the admin CLI (consent, import/export, quota, audit)."""

import json
import os
import re
import smtplib
import threading
import time

from common import ACME_NET, ORG_ACME_CAMPAIGNS, TRACKING_KEY, HarnessCase

ORG_ACME = ORG_ACME_CAMPAIGNS + "[quota]\nmax_recipients_per_message = 5\n"
ORG_QUOTA = """id = "quotaco"
domains = ["quota.example"]
networks = ["127.0.0.1/32"]
[quota]
messages = [{ per = "1h", max = 25 }]
"""
ORG_ABORT = """id = "abortco"
domains = ["abort.example"]
networks = ["127.0.0.1/32"]
[quota]
messages = [{ per = "1h", max = 2 }]
recipients = [{ per = "1d", max = 3 }]
"""

HTML = ('<html><body><p>News</p><a href="https://acme.example/offer?id=7&amp;src=nl">Offer</a>'
        '</body></html>\r\n')


def message(msgid: str, sender: str, rcpts, extra: str = "", html: bool = True) -> bytes:
    ctype = "text/html; charset=utf-8" if html else "text/plain; charset=utf-8"
    body = HTML if html else "Hello\r\n"
    return (f"From: <{sender}>\r\nTo: {', '.join('<' + r + '>' for r in rcpts)}\r\nSubject: policy\r\n"
            f"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <{msgid}>\r\n{extra}MIME-Version: 1.0\r\n"
            f"Content-Type: {ctype}\r\n\r\n{body}").encode()


class Policy(HarnessCase):
    harness_kwargs = dict(milter="unix", orgs={"acme": ORG_ACME, "quotaco": ORG_QUOTA, "abortco": ORG_ABORT},
                          secrets=TRACKING_KEY)

    def smtp(self, source="127.0.0.1") -> smtplib.SMTP:
        s = smtplib.SMTP("127.0.0.1", self.h.smtp_port, timeout=30, source_address=(source, 0))
        s.ehlo("client.cllavio-it.test")
        return s

    def transaction(self, sender, rcpts, data, source=ACME_NET):
        """(refused recipients {addr: (code, text)}, data reply code, text)."""
        with self.smtp(source) as s:
            s.mail(sender)
            refused = {}
            for r in rcpts:
                code, text = s.rcpt(r)
                if code >= 400:
                    refused[r] = (code, text.decode())
            if len(refused) == len(rcpts):
                return refused, None, ""
            code, text = s.data(data)
            return refused, code, text.decode()

    def html_part(self, d) -> str:
        raw = d.body_after_received()
        return raw.split(b"\r\n\r\n", 1)[1].decode()

    def verify(self, url: str) -> dict:
        r = self.h.ctl("token", "verify", url, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def consent(self, op, address, org="acme"):
        self.h.ctl("consent", op, org, address)

    # ---- quotas

    def test_quota_is_exact_under_ten_parallel_sessions(self):
        results, lock = [], threading.Lock()

        def session(n):
            with self.smtp() as s:
                for i in range(10):
                    msg = message(f"q-{n}-{i}@quota.example", "bulk@quota.example", ["r@example.net"], html=False)
                    try:
                        s.sendmail("bulk@quota.example", ["r@example.net"], msg)
                        outcome = 250
                    except smtplib.SMTPDataError as e:
                        outcome = (e.smtp_code, e.smtp_error.decode())
                        s.rset()
                    with lock:
                        results.append(outcome)

        threads = [threading.Thread(target=session, args=(n,)) for n in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        accepted = [r for r in results if r == 250]
        deferred = [r for r in results if r != 250]
        self.assertEqual(len(results), 100)
        self.assertEqual(len(accepted), 25)
        self.assertTrue(all(code == 451 for code, _ in deferred), deferred[:3])
        self.assertRegex(deferred[0][1], r"4\.7\.1 Sending quota of quotaco exceeded \(25 messages per hour\); "
                                         r"retry after (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC")
        got = self.h.wait_delivered(25, timeout=60, match=lambda d: d.sender == "bulk@quota.example")
        time.sleep(1)  # nothing more arrives
        self.assertEqual(len(self.h.delivered(match=lambda d: d.sender == "bulk@quota.example")), 25, len(got))
        usage = json.loads(self.h.ctl("quota", "show", "quotaco", "--json").stdout)
        self.assertEqual(usage["windows"], [{"kind": "messages", "per": "hour", "used": 25, "max": 25}])
        # A reset (audited) lets mail through again at once, without restarting the milter.
        self.h.ctl("quota", "reset", "quotaco")
        with self.smtp() as s:
            s.sendmail("bulk@quota.example", ["r@example.net"],
                       message("q-after-reset@quota.example", "bulk@quota.example", ["r@example.net"], html=False))
        self.assertIn("quota.reset", self.h.ctl("audit", "--since", "1h").stdout)

    def test_aborted_and_refused_transactions_are_not_charged(self):
        with self.smtp() as s:
            for _ in range(3):  # RSET after RCPT: reserved recipients come back
                s.mail("a@abort.example")
                s.rcpt("x@example.net")
                s.rset()
        with self.smtp() as s:  # a client that disconnects in the middle
            s.mail("a@abort.example")
            s.rcpt("x@example.net")
            s.sock.close()
        time.sleep(0.5)
        sent = []
        with self.smtp() as s:
            for i in range(2):
                s.sendmail("a@abort.example", ["x@example.net"],
                           message(f"ab-{i}@abort.example", "a@abort.example", ["x@example.net"], html=False))
                sent.append(i)
            with self.assertRaises(smtplib.SMTPDataError) as e:  # 2 messages per hour
                s.sendmail("a@abort.example", ["x@example.net"],
                           message("ab-2@abort.example", "a@abort.example", ["x@example.net"], html=False))
            self.assertEqual(e.exception.smtp_code, 451)
            # 2 of 3 recipients per day are charged; the refused message gave its recipient back.
            s.rset()
            s.mail("a@abort.example")
            self.assertEqual(s.rcpt("y@example.net")[0], 250)
            code, text = s.rcpt("z@example.net")
            self.assertEqual(code, 451)
            self.assertIn(b"Sending quota of abortco exceeded (3 recipients per day)", text)
        self.assertEqual(len(sent), 2)

    def test_recipients_past_the_per_message_limit_get_452(self):
        rcpts = [f"m{i}@example.net" for i in range(7)]
        consented = message("lim-1@acme.example", "alice@acme.example", rcpts, html=False)
        refused, code, _ = self.transaction("alice@acme.example", rcpts, consented)
        self.assertEqual(sorted(refused), ["m5@example.net", "m6@example.net"])
        self.assertTrue(all(c == 452 and "4.5.3 Too many recipients" in t for c, t in refused.values()), refused)
        self.assertEqual(code, 250)
        d = self.delivered_one("lim-1@acme.example")
        self.assertEqual(sorted(d.rcpts), rcpts[:5])

    # ---- streams and suppression

    def test_unsubscribed_refused_by_campaigns_only(self):
        self.consent("unsubscribe", "Bob.Unsub@Example.NET")  # stored with the domain lowercased
        refused, code, _ = self.transaction("news@acme.example", ["Bob.Unsub@example.net", "carol.s@example.net"],
                                            message("sup-1@acme.example", "news@acme.example", ["x"], html=False))
        self.assertEqual(list(refused), ["Bob.Unsub@example.net"])
        self.assertEqual(refused["Bob.Unsub@example.net"],
                         (550, "5.7.1 <Bob.Unsub@example.net> unsubscribed from acme mailings"))
        self.assertEqual(code, 250)
        self.assertEqual(self.delivered_one("sup-1@acme.example").rcpts, ["carol.s@example.net"])
        # Person-to-person mail (the default stream) still reaches them.
        refused, code, _ = self.transaction("alice@acme.example", ["Bob.Unsub@example.net"],
                                            message("sup-2@acme.example", "alice@acme.example", ["x"], html=False))
        self.assertEqual((refused, code), ({}, 250))
        self.assertEqual(self.delivered_one("sup-2@acme.example").rcpts, ["Bob.Unsub@example.net"])

    def test_header_chosen_campaign_removes_unsubscribed_recipients(self):
        self.consent("unsubscribe", "hdr.unsub@example.net")
        self.consent("grant", "hdr.ok@example.net")
        data = message("hdr-1@acme.example", "alice@acme.example", ["hdr.unsub@example.net", "hdr.ok@example.net"],
                       extra="X-Cllavio-Stream: campaigns\r\n")
        refused, code, _ = self.transaction("alice@acme.example", ["hdr.unsub@example.net", "hdr.ok@example.net"], data)
        self.assertEqual((refused, code), ({}, 250))  # known only after RCPT: removed at end of message
        d = self.delivered_one("hdr-1@acme.example")
        self.assertEqual(d.rcpts, ["hdr.ok@example.net"])
        self.assertIsNone(d.header("X-Cllavio-Stream"))
        rec = self.record(d.queue_id)
        self.assertEqual((rec["stream"], rec["suppressed"]), ("campaigns", ["hdr.unsub@example.net"]))
        self.h.wait_log(rf"{d.queue_id}: org=acme .* stream=campaigns suppressed=<hdr\.unsub@example\.net>")
        # Nobody left: the whole message is refused.
        only = message("hdr-2@acme.example", "alice@acme.example", ["hdr.unsub@example.net"],
                       extra="X-Cllavio-Stream: campaigns\r\n")
        refused, code, text = self.transaction("alice@acme.example", ["hdr.unsub@example.net"], only)
        self.assertEqual(code, 550)
        self.assertIn("5.7.1 Every recipient unsubscribed from acme mailings", text)

    # ---- consent and tracking

    def test_campaign_mail_is_tracked_only_with_consent(self):
        sent = message("con-1@acme.example", "news@acme.example", ["dave@example.net"])
        self.send(sent, "news@acme.example", ["dave@example.net"], extra_args=["--local-interface", ACME_NET])
        d = self.delivered_one("con-1@acme.example")
        self.assertEqual(self.html_part(d), HTML)  # no consent recorded: the body is untouched
        rec = self.record(d.queue_id)
        self.assertEqual((rec["tracking"]["status"], rec["tracking"]["skipped"]), ("skipped", "no_consent"))
        self.consent("grant", "dave@example.net")
        sent = message("con-2@acme.example", "news@acme.example", ["dave@example.net"])
        self.send(sent, "news@acme.example", ["dave@example.net"], extra_args=["--local-interface", ACME_NET])
        d = self.delivered_one("con-2@acme.example")
        links = re.findall(r'href="(https://t\.acme\.example/c/[A-Za-z0-9_-]+)"', self.html_part(d))
        self.assertEqual(len(links), 1)
        t = self.verify(links[0])
        self.assertEqual((t["url"], t["recipient"]), ("https://acme.example/offer?id=7&src=nl", "dave@example.net"))
        # Revoked: untracked again, whatever the stream's model.
        self.consent("revoke", "dave@example.net")
        self.send(message("con-3@acme.example", "alice@acme.example", ["dave@example.net"]), "alice@acme.example",
                  ["dave@example.net"], extra_args=["--local-interface", ACME_NET])
        self.assertEqual(self.html_part(self.delivered_one("con-3@acme.example")), HTML)

    def test_several_recipients_are_tracked_only_when_all_consent(self):
        self.consent("grant", "erin@example.net")
        rcpts = ["erin@example.net", "frank@example.net"]
        self.send(message("multi-1@acme.example", "news@acme.example", rcpts), "news@acme.example", rcpts,
                  extra_args=["--local-interface", ACME_NET])
        d = self.delivered_one("multi-1@acme.example")
        self.assertEqual(self.html_part(d), HTML)
        self.assertIsNone(d.header("List-Unsubscribe"))  # one-click needs a single recipient
        self.consent("grant", "frank@example.net")
        self.send(message("multi-2@acme.example", "news@acme.example", rcpts), "news@acme.example", rcpts,
                  extra_args=["--local-interface", ACME_NET])
        d = self.delivered_one("multi-2@acme.example")
        pixel = re.search(r'src="(https://t\.acme\.example/o/[A-Za-z0-9_-]+)"', self.html_part(d)).group(1)
        self.assertIsNone(self.verify(pixel)["recipient"])  # the token names the message, not a recipient
        self.assertEqual(self.record(d.queue_id)["recipient_count"], 2)

    def test_list_unsubscribe_headers_are_added_and_verify(self):
        self.send(message("lu-1@acme.example", "news@acme.example", ["gina@example.net"]), "news@acme.example",
                  ["gina@example.net"], extra_args=["--local-interface", ACME_NET])
        d = self.delivered_one("lu-1@acme.example")
        lu = d.header("List-Unsubscribe")
        self.assertRegex(lu, r"^<https://t\.acme\.example/u/[A-Za-z0-9_-]+>$")
        self.assertEqual(d.header("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click")
        t = self.verify(lu.strip("<>"))
        self.assertEqual((t["kind"], t["org"], t["recipient"], t["stream"]),
                         ("unsubscribe", "acme", "gina@example.net", "campaigns"))
        self.assertEqual(t["message"], self.record(d.queue_id)["id"])
        # Personal mail gets none.
        self.send(message("lu-2@acme.example", "alice@acme.example", ["gina@example.net"]), "alice@acme.example",
                  ["gina@example.net"], extra_args=["--local-interface", ACME_NET])
        self.assertIsNone(self.delivered_one("lu-2@acme.example").header("List-Unsubscribe"))

    # ---- admin CLI

    def test_consent_import_export_show_and_audit(self):
        csv = os.path.join(self.h.tmp_dir, "consent.csv")
        with open(csv, "w") as f:
            f.write("address,state,timestamp\n"
                    "imp1@example.net,granted,2026-01-02T03:04:05Z\n"
                    "not-an-address,granted\n"
                    "imp2@Example.NET,unsubscribed,1767225600\n"
                    "imp3@example.net,maybe\n"
                    "imp4@example.net,revoked\n")
        r = self.h.ctl("consent", "import", "acme", csv, check=False)
        self.assertEqual(r.returncode, 1)  # some lines were bad; the rest is imported
        self.assertIn("consent.csv:3: not an address", r.stderr)
        self.assertIn("consent.csv:5: state must be granted, revoked, unsubscribed or bounced", r.stderr)
        self.assertEqual(json.loads(r.stdout)["changed"], 3)
        shown = json.loads(self.h.ctl("consent", "show", "acme", "imp2@example.net").stdout)
        self.assertEqual((shown["state"], shown["at"][:19], shown["source"]),
                         ("unsubscribed", "2026-01-01T00:00:00", "import"))
        export = self.h.ctl("consent", "export", "acme").stdout.splitlines()
        self.assertEqual(export[0], "address,state,timestamp,source")
        self.assertIn("imp1@example.net,granted,2026-01-02T03:04:05.000000Z,import", export)
        audit = [json.loads(line) for line in self.h.ctl("audit", "--json").stdout.splitlines()]
        self.assertTrue(any(a["action"] == "consent.import" and a["address"] == "imp4@example.net"
                            and a["to"] == "revoked" for a in audit))
        self.assertEqual(self.h.ctl("consent", "grant", "nosuchorg", "a@b.example", check=False).returncode, 64)
