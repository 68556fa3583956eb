"""`cllavioctl rewrite` shows exactly what the milter sends: messages go through the real
Postfix + cllavio-milter, and for each the CLI, given the same message, envelope and the
record's message id, must print the delivered message byte for byte (Postfix's own Received
header aside): a campaign with List-Unsubscribe, personal mail, a multipart message, a
recipient without consent, and a header-chosen campaign that loses an unsubscribed recipient."""

import json
import os
import subprocess

import harness
from common import ACME_NET, ORG_ACME_CAMPAIGNS, TRACKING_KEY, HarnessCase, multipart_message

HTML = ('<html><body><h1>News</h1><p>Read <a href="https://acme.example/offer?id=7&amp;src=nl">the offer</a> '
        'or <a href="mailto:sales@acme.example">write</a>.</p></body></html>\r\n')


def html_message(msgid: str, sender: str, rcpts, extra: str = "") -> bytes:
    return (f"From: <{sender}>\r\nTo: {', '.join('<' + r + '>' for r in rcpts)}\r\nSubject: preview\r\n"
            f"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <{msgid}>\r\n{extra}MIME-Version: 1.0\r\n"
            f"Content-Type: text/html; charset=utf-8\r\n\r\n{HTML}").encode()


class Preview(HarnessCase):
    harness_kwargs = dict(milter="unix", orgs={"acme": ORG_ACME_CAMPAIGNS}, secrets=TRACKING_KEY)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.h.ctl("consent", "grant", "acme", "carol@example.net")
        cls.h.ctl("consent", "unsubscribe", "acme", "erin@example.net")

    def through_both(self, msgid: str, data: bytes, sender: str, rcpts: list[str]) -> tuple[bytes, dict, dict]:
        """Sends the message through Postfix, then previews it with the record's id. Returns the
        delivered bytes (Postfix's Received header removed), the record and the CLI's report."""
        self.send(data, sender, rcpts, extra_args=["--local-interface", ACME_NET])
        delivered = self.delivered_one(msgid)
        rec = self.record(delivered.queue_id)
        report = os.path.join(self.h.tmp_dir, f"{msgid}.json")
        args = [os.environ.get("CLLAVIO_CTL", harness.DEFAULT_CTL), "-c", self.h.config_path, "rewrite",
                "--org", "acme", "--from", sender, "--message-id", rec["id"], "--report", report]
        for r in rcpts:
            args += ["--rcpt", r]
        r = subprocess.run(args, input=data, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        got = delivered.body_after_received()
        if r.stdout != got:
            self.fail(f"preview differs from what arrived:\n--- preview\n{r.stdout[:3000]!r}\n"
                      f"--- delivered\n{got[:3000]!r}")
        with open(report) as f:
            return got, rec, json.load(f)

    def test_campaign_with_list_unsubscribe(self):
        msg = html_message("p-campaign@acme.example", "news@acme.example", ["carol@example.net"])
        got, rec, report = self.through_both("p-campaign@acme.example", msg, "news@acme.example",
                                             ["carol@example.net"])
        self.assertEqual(rec["stream"], "campaigns")
        self.assertEqual(rec["list_unsubscribe"], "added")
        self.assertEqual(rec["tracking"]["status"], "tracked")  # carol granted consent
        self.assertIn(b"\r\nList-Unsubscribe: <https://t.acme.example/u/", got)
        self.assertIn(b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", got)
        self.assertEqual(report["stream"], "campaigns")
        self.assertEqual([e["name"] for e in report["header_edits"]], ["List-Unsubscribe", "List-Unsubscribe-Post"])

    def test_personal_mail(self):
        msg = html_message("p-personal@acme.example", "alice@acme.example", ["bob@example.net"])
        got, rec, report = self.through_both("p-personal@acme.example", msg, "alice@acme.example",
                                             ["bob@example.net"])
        self.assertEqual(rec["stream"], "default")
        self.assertEqual(rec["tracking"]["status"], "tracked")  # implied consent
        self.assertNotIn(b"List-Unsubscribe", got)
        self.assertIn(b"https://t.acme.example/c/", got)
        self.assertEqual(report["links_rewritten"], 1)

    def test_multipart(self):
        msg = multipart_message("p-multipart@acme.example", sender="alice@acme.example", rcpt="bob@example.net")
        got, rec, _ = self.through_both("p-multipart@acme.example", msg, "alice@acme.example", ["bob@example.net"])
        self.assertEqual(rec["tracking"]["status"], "tracked")
        self.assertIn(b"https://t.acme.example/o/", got)

    def test_recipient_without_consent(self):
        msg = html_message("p-noconsent@acme.example", "news@acme.example", ["dave@example.net"])
        got, rec, report = self.through_both("p-noconsent@acme.example", msg, "news@acme.example",
                                             ["dave@example.net"])
        self.assertEqual(rec["tracking"]["skipped"], "no_consent")
        self.assertEqual(report["skipped"], "no_consent")
        self.assertNotIn(b"https://t.acme.example/c/", got)  # the body is as sent
        self.assertTrue(got.endswith(HTML.encode()))
        self.assertIn(b"List-Unsubscribe: <https://t.acme.example/u/", got)

    def test_a_header_block_cut_by_a_line_that_is_not_a_field(self):
        # Postfix ends the header at such a line and writes an empty line before it.
        msg = html_message("p-cut@acme.example", "alice@acme.example", ["bob@example.net"])
        head, body = msg.split(b"\r\n\r\n", 1)
        msg = head + b"\r\nthis line is no header field\r\n" + body
        got, rec, _ = self.through_both("p-cut@acme.example", msg, "alice@acme.example", ["bob@example.net"])
        self.assertIn(b"\r\n\r\nthis line is no header field\r\n", got)
        self.assertEqual(rec["tracking"]["status"], "tracked")

    def test_header_chosen_campaign_loses_an_unsubscribed_recipient(self):
        rcpts = ["carol@example.net", "erin@example.net"]
        msg = html_message("p-header@acme.example", "alice@acme.example", rcpts, extra="X-Cllavio-Stream: campaigns\r\n")
        got, rec, report = self.through_both("p-header@acme.example", msg, "alice@acme.example", rcpts)
        self.assertEqual(rec["stream"], "campaigns")
        self.assertEqual(rec["suppressed"], ["erin@example.net"])
        self.assertEqual(report["recipients_removed"], ["erin@example.net"])  # as given with --rcpt
        self.assertNotIn(b"X-Cllavio-Stream", got)
        # What is left is a one-recipient campaign: List-Unsubscribe for carol, tracked (she consented).
        self.assertEqual(rec["list_unsubscribe"], "added")
        self.assertEqual(rec["tracking"]["status"], "tracked")


if __name__ == "__main__":
    import unittest
    unittest.main()
