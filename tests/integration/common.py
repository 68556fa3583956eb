"""Shared pieces of the integration tests: org files, test messages, corpus access,
and a TestCase base that runs one harness per class.

The third-party corpus (../shared/corpus next to the repository, or $CLLAVIO_CORPUS)
is used from where it is; tests that need it skip cleanly when it is absent.
"""

import base64
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.environ.get("CLLAVIO_CORPUS", os.path.join(os.path.dirname(REPO), "shared", "corpus"))

# Loopback addresses stand in for client networks: swaks binds them with --local-interface.
ACME_NET, GLOBEX_NET = "127.0.0.2", "127.0.0.3"

ORG_ACME = f"""id = "acme"
name = "Acme Inc."
domains = ["acme.example"]
sasl_users = ["@acme.example", "ops@partner.example"]
networks = ["{ACME_NET}/32"]
"""
ORG_GLOBEX = f"""id = "globex"
domains = ["globex.example"]
sasl_users = ["@globex.example"]
networks = ["{GLOBEX_NET}/32"]
"""
ORG_INITECH = """id = "initech"
domains = ["initech.example"]
trust_sender_domain = true
"""
# Local submissions (sendmail) reach the milter as client 127.0.0.1.
ORG_LOCAL = """id = "local"
domains = ["local.example"]
networks = ["127.0.0.1/32"]
"""
ALL_ORGS = {"acme": ORG_ACME, "globex": ORG_GLOBEX, "initech": ORG_INITECH, "local": ORG_LOCAL}

# An org that tracks (consent implied) with a campaign stream for news@acme.example (consent
# required, suppression, List-Unsubscribe), and the secrets file with the key it signs with.
ORG_ACME_CAMPAIGNS = f"""id = "acme"
domains = ["acme.example"]
networks = ["{ACME_NET}/32"]
[tracking]
opens = true
clicks = true
domain = "t.acme.example"
consent = "implied"
[[stream]]
name = "campaigns"
senders = ["news@acme.example"]
kind = "campaign"
consent = "required"
list_unsubscribe = true
"""
TRACKING_KEY = {"tracking_key": [{"id": "pol",
                                  "secret": "cG9saWN5LXRlc3Qta2V5LW9ubHktZm9yLXRoZS1pbnRlZ3JhdGlvbi10ZXN0cw=="}]}


def plain_message(msgid: str, sender: str = "alice@acme.example", rcpt: str = "bob@example.net",
                  subject: str = "plain") -> bytes:
    return (f"From: Alice <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n"
            f"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <{msgid}>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            "\r\nHello Bob,\r\n.dot-started line\r\ncaf\u00e9 \u20ac  \r\n\r\n-- \r\nAlice\r\n").encode()


def multipart_message(msgid: str, sender: str = "alice@acme.example", rcpt: str = "bob@example.net") -> bytes:
    """multipart/mixed( multipart/alternative(text QP, multipart/related(html, png)), pdf )."""
    pdf = base64.encodebytes(bytes(range(256)) * 8).replace(b"\n", b"\r\n").decode()
    png = base64.encodebytes(b"\x89PNG\r\n\x1a\n" + bytes(300)).replace(b"\n", b"\r\n").decode()
    html = ('<html><body><p>Hi <a href="https://www.example.com/a?x=1&amp;y=2">link</a></p>'
            '<img src="cid:logo@acme"></body></html>')
    return (
        f"From: Alice <{sender}>\r\nTo: <{rcpt}>\r\nSubject: multipart\r\n"
        f"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <{msgid}>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
        "This is a multi-part message in MIME format.\r\n"
        "--outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
        "--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Hi, caf=C3=A9 =E2=82=AC and a soft=\r\n break.\r\n"
        "--alt\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n"
        "--rel\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
        f"{html}\r\n"
        "--rel\r\nContent-Type: image/png\r\nContent-ID: <logo@acme>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{png}"
        "--rel--\r\n"
        "--alt--\r\n"
        "--outer\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n"
        "Content-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{pdf}"
        "--outer--\r\nepilogue\r\n"
    ).encode()


def corpus_messages(limit: int = 40) -> list[tuple[str, bytes]]:
    """Up to `limit` corpus messages that SMTP can carry unchanged: mbox 'From ' line dropped,
    line ends made CRLF; messages with NUL, bare CR or lines over 998 octets are left out
    (SMTP cannot carry those as they are). Sorted by name for determinism."""
    eml = os.path.join(CORPUS, "eml")
    if not os.path.isdir(eml):
        return []
    paths = sorted(os.path.join(root, f) for root, _, files in os.walk(eml) for f in files
                   if not f.startswith("_") and not f.endswith((".mbox", ".mbox.txt")))
    out = []
    for path in paths:
        name = os.path.relpath(path, eml)
        with open(path, "rb") as f:
            data = f.read()
        if data.startswith(b"From "):
            data = data.split(b"\n", 1)[1] if b"\n" in data else b""
        data = harness.to_crlf(data)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        if not data.strip() or b"\0" in data or b"\r" in data.replace(b"\r\n", b""):
            continue
        if any(len(line) > 998 for line in data.split(b"\r\n")):
            continue
        if len(data) > 2_000_000:
            continue
        out.append((name, data))
        if len(out) >= limit:
            break
    return out


class HarnessCase(unittest.TestCase):
    """One harness for the whole class (starting Postfix costs a few seconds)."""

    harness_kwargs: dict = {}

    @classmethod
    def setUpClass(cls):
        cls.h = harness.Harness(**cls.harness_kwargs)
        try:
            cls.h.start()
        except BaseException:
            cls.h.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.h.close()

    # ---- helpers

    def send(self, data: bytes, sender: str, rcpts, **kw):
        r = self.h.swaks(sender=sender, rcpts=rcpts, data=data, **kw)
        self.assertEqual(r.returncode, 0, f"swaks failed:\n{r.stdout}\n{r.stderr}")
        return r

    def delivered_one(self, msgid: str, timeout: float = 30):
        [d] = self.h.wait_delivered(1, timeout=timeout, match=lambda d: d.header("Message-ID") == f"<{msgid}>")
        return d

    def record(self, queue_id: str, timeout: float = 10) -> dict:
        """The store's record for a Postfix queue id (waits for the end-of-message write)."""
        import time
        deadline = time.monotonic() + timeout
        while True:
            rows = [r for r in self.h.ctl_messages() if r["queue_id"] == queue_id]
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(len(rows), 1, f"records for {queue_id}: {rows}")
        return rows[0]

    def assertIdentical(self, delivered, sent: bytes):
        got = delivered.body_after_received()
        if got != sent:
            self.fail(f"message changed in transit:\n--- sent\n{sent[:2000]!r}\n--- got\n{got[:2000]!r}")
