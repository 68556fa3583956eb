"""Open and click tracking through a real Postfix: a tracked newsletter arrives rewritten
(valid MIME, tokens that verify back to the original links, untouched parts identical),
and what must not change (DKIM-signed, opted out, too large, untracked org) arrives
byte-identical."""

import email
import email.policy
import json
import re
import unittest

from common import ACME_NET, GLOBEX_NET, ORG_GLOBEX, HarnessCase, plain_message

# The secrets file: one tracking key.
KEY = {"tracking_key": [{"id": "e2e",
                         "secret": "ZTJlLXRlc3Qta2V5LW9ubHktZm9yLXRoZS1pbnRlZ3JhdGlvbi10ZXN0cw=="}]}
ORG_TRACKED = f"""id = "acme"
domains = ["acme.example"]
networks = ["{ACME_NET}/32", "127.0.0.1/32"]
[tracking]
opens = true
clicks = true
domain = "t.acme.example"
consent = "implied"
"""

TEXT = "Hello, this week's news: https://acme.example/news (plain part, not tracked).\r\n"
HTML = ('<html><body><h1>News</h1>\r\n'
        '<a href="https://acme.example/article?id=7&amp;src=mail#top">Read the article</a>\r\n'
        '<a href="mailto:editor@acme.example">Write to us</a> <a href="#x">anchor</a>\r\n'
        '<!--[if mso]><v:roundrect href="https://acme.example/offer">Offer</v:roundrect><![endif]-->\r\n'
        '<p>Caf\u00e9</p></body></html>\r\n')


def newsletter(msgid: str, extra_headers: str = "") -> bytes:
    import quopri
    qp = quopri.encodestring(HTML.replace("\r\n", "\n").encode(), quotetabs=False).decode().replace("\n", "\r\n")
    if not qp.endswith("\r\n"):
        qp += "\r\n"
    return ("From: Acme News <news@acme.example>\r\nTo: <bob@example.net>\r\nSubject: Newsletter\r\n"
            f"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <{msgid}>\r\n{extra_headers}MIME-Version: 1.0\r\n"
            "Content-Type: multipart/alternative; boundary=\"nl\"\r\n\r\n"
            "--nl\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + TEXT +
            "--nl\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
            qp + "--nl--\r\n").encode()


class Tracking(HarnessCase):
    harness_kwargs = dict(milter="unix", orgs={"acme": ORG_TRACKED, "globex": ORG_GLOBEX}, secrets=KEY,
                          settings={"tracking.max_rewrite_bytes": 20000})

    def submit(self, msg: bytes, rcpts=("bob@example.net",), sender="news@acme.example", source=ACME_NET):
        self.send(msg, sender, list(rcpts), extra_args=["--local-interface", source])

    def verify(self, url: str) -> dict:
        r = self.h.ctl("token", "verify", url, check=False)
        self.assertEqual(r.returncode, 0, f"{url}: {r.stderr}")
        return json.loads(r.stdout)

    def test_newsletter_arrives_tracked_and_valid(self):
        sent = newsletter("nl-1@acme.example")
        self.submit(sent)
        d = self.delivered_one("nl-1@acme.example")
        raw = d.body_after_received()
        self.assertNotEqual(raw, sent)
        self.assertTrue(all(len(line) <= 998 for line in raw.split(b"\r\n")))
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = [p.get_content_type() for p in msg.walk()]
        self.assertEqual(parts, ["multipart/alternative", "text/plain", "text/html"])
        text_part = raw[raw.index(b"--nl\r\n"):raw.index(b"--nl\r\nContent-Type: text/html")]
        self.assertIn(TEXT.encode(), text_part)  # the plain part is byte-identical
        html = [p for p in msg.walk() if p.get_content_type() == "text/html"][0].get_content()
        self.assertIn("Caf\u00e9", html)
        clicks = re.findall(r'href="(https://t\.acme\.example/c/[A-Za-z0-9_-]+)"', html)
        self.assertEqual(len(clicks), 2)  # the <a> and the VML button; mailto and #x stay
        destinations = [self.verify(u)["url"] for u in clicks]
        self.assertEqual(destinations, ["https://acme.example/article?id=7&src=mail#top", "https://acme.example/offer"])
        self.assertIn('href="mailto:editor@acme.example"', html)
        pixels = re.findall(r'<img src="(https://t\.acme\.example/o/[A-Za-z0-9_-]+)"', html)
        self.assertEqual(len(pixels), 1)
        opened = self.verify(pixels[0])
        self.assertEqual((opened["kind"], opened["org"], opened["recipient"]), ("open", "acme", "bob@example.net"))
        rec = self.record(d.queue_id)
        self.assertEqual(opened["message"], rec["id"])  # the token names the stored record
        self.assertEqual(rec["tracking"]["status"], "tracked")
        self.assertEqual([l["url"] for l in rec["tracking"]["links"]], destinations)
        self.assertEqual(rec["tracking"]["links_kept"], 2)
        self.h.wait_log(rf"{d.queue_id}: org=acme .* track=tracked links=2 pixels=1")

    def test_several_recipients_share_tokens_without_a_recipient(self):
        self.submit(newsletter("nl-2@acme.example"), rcpts=("a@example.net", "b@example.org"))
        d = self.delivered_one("nl-2@acme.example")  # one transaction to the next hop, two recipients
        self.assertEqual(sorted(d.rcpts), ["a@example.net", "b@example.org"])
        msg = email.message_from_bytes(d.body_after_received(), policy=email.policy.default)
        html = [p for p in msg.walk() if p.get_content_type() == "text/html"][0].get_content()
        url = re.search(r'(https://t\.acme\.example/o/[A-Za-z0-9_-]+)', html).group(1)
        self.assertIsNone(self.verify(url)["recipient"])
        self.assertFalse(self.record(d.queue_id)["tracking"]["per_recipient"])

    def test_signed_message_arrives_byte_identical(self):
        sent = newsletter("nl-3@acme.example", "DKIM-Signature: v=1; a=rsa-sha256; d=acme.example; s=s1;\r\n"
                                              "\tbh=AAAA; b=BBBB\r\n")
        self.submit(sent)
        d = self.delivered_one("nl-3@acme.example")
        self.assertIdentical(d, sent)
        self.assertEqual(self.record(d.queue_id)["tracking"]["skipped"], "dkim_signed")
        self.h.wait_log(rf"{d.queue_id}: .* track=skipped:dkim_signed")

    def test_opt_out_header_is_removed_and_nothing_else_changes(self):
        sent = newsletter("nl-4@acme.example", "X-Cllavio-Track: off\r\n")
        self.submit(sent)
        d = self.delivered_one("nl-4@acme.example")
        self.assertIdentical(d, sent.replace(b"X-Cllavio-Track: off\r\n", b""))
        self.assertEqual(self.record(d.queue_id)["tracking"]["skipped"], "opted_out")

    def test_too_large_passes_unchanged(self):
        big = newsletter("nl-5@acme.example").replace(b"<h1>News</h1>", b"<p>" + b"x" * 30000 + b"</p>")
        big = big.replace(b"x" * 30000, b"".join(b"x" * 70 + b"=\r\n" for _ in range(430)))  # keep QP lines short
        self.submit(big)
        d = self.delivered_one("nl-5@acme.example")
        self.assertIdentical(d, big)
        self.assertEqual(self.record(d.queue_id)["tracking"]["skipped"], "too_large")

    def test_org_without_tracking_is_untouched(self):
        sent = newsletter("nl-6@globex.example").replace(b"news@acme.example", b"news@globex.example")
        self.submit(sent, sender="news@globex.example", source=GLOBEX_NET)
        d = self.delivered_one("nl-6@globex.example")
        self.assertIdentical(d, sent)
        self.assertNotIn("tracking", self.record(d.queue_id))

    def test_local_submission_is_tracked_too(self):
        r = self.h.sendmail(newsletter("nl-7@acme.example"), "app@acme.example", ["bob@example.net"])
        self.assertEqual(r.returncode, 0, r.stderr)
        d = self.delivered_one("nl-7@acme.example")
        self.assertIn(b"https://t.acme.example/c/", d.raw.replace(b"=\r\n", b""))
        self.assertEqual(self.record(d.queue_id)["tracking"]["status"], "tracked")

    def test_plain_mail_of_a_tracking_org_is_untouched(self):
        sent = plain_message("plain-7@acme.example", sender="alice@acme.example")
        self.submit(sent, sender="alice@acme.example")
        d = self.delivered_one("plain-7@acme.example")
        self.assertIdentical(d, sent)
        self.assertEqual(self.record(d.queue_id)["tracking"]["status"], "unchanged")

    def test_stats_count_every_outcome_and_skip_reason(self):
        signed = newsletter("nl-8@acme.example", "DKIM-Signature: v=1; d=acme.example; s=s1; bh=A; b=B\r\n")
        self.submit(signed)
        self.submit(newsletter("nl-9@acme.example"))
        for msgid in ("nl-8@acme.example", "nl-9@acme.example"):
            self.record(self.delivered_one(msgid).queue_id)
        stats = {s["org"]: s for s in map(json.loads, self.h.ctl("tracking", "stats", "--json").stdout.splitlines())}
        acme = stats["acme"]
        # The same counts, independently from the records (other tests of this class may have run first).
        recs = [r for r in self.h.ctl_messages() if r["org"] == "acme" and r["action"] == "accept"]
        status = [r.get("tracking", {}).get("status", "") for r in recs]
        self.assertEqual(acme["messages"], len(recs))
        self.assertEqual((acme["tracked"], acme["unchanged"], acme["skipped"]),
                         (status.count("tracked"), status.count("unchanged"), status.count("skipped")))
        self.assertGreaterEqual(acme["tracked"], 1)
        self.assertEqual(acme["skip_reasons"].get("dkim_signed"),
                         sum(1 for r in recs if r.get("tracking", {}).get("skipped") == "dkim_signed"))
        self.assertGreaterEqual(acme["skip_reasons"]["dkim_signed"], 1)
        self.assertEqual(acme["links_rewritten"], sum(len(r.get("tracking", {}).get("links", [])) for r in recs))
        self.assertEqual(self.h.ctl("tracking", "stats", "--since", "bogus", check=False).returncode, 64)
        text = self.h.ctl("tracking", "stats", "--org", "acme", "--since", "1d").stdout
        self.assertIn("acme: ", text)
        self.assertIn("skipped dkim_signed", text)
        self.assertNotIn("globex", text)


if __name__ == "__main__":
    unittest.main()
