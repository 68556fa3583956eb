"""The privacy lifecycle through a real Postfix and the tests' HTTPS API: mail to and from an
address, tracked, with a consent change; `cllavioctl export` shows all of it; `cllavioctl
erase` leaves nothing that names it in `mdb_dump -a` of the store and, after `cllavioctl
store compact`, nothing in the raw data file; a campaign to the erased (unsubscribed) address
is still refused; the API receives `subject.erased`; an erasure request polled from the API
is applied."""

import json
import os
import smtplib
import subprocess
import time

from common import ACME_NET, ORG_ACME_CAMPAIGNS, TRACKING_KEY, HarnessCase

SUBJECT = "Erin.Subject@Example.NET"   # as the sender types it
NORMAL = "Erin.Subject@example.net"     # as the store keys it (the domain lowercased)
FROM_API = "frank.api@example.net"

HTML = ('<html><body><p>Hello</p><a href="https://acme.example/offer?id=7">Offer</a>'
        '</body></html>\r\n')


def message(msgid: str, sender: str, rcpts, html: bool = True) -> bytes:
    ctype = "text/html; charset=utf-8" if html else "text/plain; charset=utf-8"
    body = HTML if html else "Hello\r\n"
    return (f"From: <{sender}>\r\nTo: {', '.join('<' + r + '>' for r in rcpts)}\r\nSubject: privacy\r\n"
            f"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <{msgid}>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: {ctype}\r\n\r\n{body}").encode()


def mentions(data: bytes, *needles: str) -> list[str]:
    low = data.lower()
    return [n for n in needles if n.lower().encode() in low]


class Privacy(HarnessCase):
    harness_kwargs = dict(
        milter="unix", orgs={"acme": ORG_ACME_CAMPAIGNS}, secrets=TRACKING_KEY,
        api=dict(org_keys={"acme": "acme-key"}),
        settings={"api.linger_ms": 50, "api.consent_poll_s": 1})

    def transaction(self, sender, rcpts, data, source=ACME_NET):
        """(refused recipients {addr: (code, text)}, data reply code)."""
        with smtplib.SMTP("127.0.0.1", self.h.smtp_port, timeout=30, source_address=(source, 0)) as s:
            s.ehlo("client.cllavio-it.test")
            s.mail(sender)
            refused = {}
            for r in rcpts:
                code, text = s.rcpt(r)
                if code >= 400:
                    refused[r] = (code, text.decode())
            if len(refused) == len(rcpts):
                return refused, None
            code, _ = s.data(data)
            return refused, code

    def export(self, address, org="acme") -> dict:
        r = self.h.ctl("export", org, address) if org else self.h.ctl("export", "--all-orgs", address)
        return json.loads(r.stdout)

    def mdb_dump(self) -> bytes:
        r = subprocess.run(["mdb_dump", "-n", "-a", "-p", os.path.join(self.h.store_dir, "cllavio.mdb")], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_export_erase_compact_and_suppression(self):
        h = self.h
        # Mail to the address (tracked), to it and someone else, and from it.
        for msgid, sender, rcpts in (("p-1@acme.example", "alice@acme.example", [SUBJECT]),
                                     ("p-2@acme.example", "alice@acme.example", [SUBJECT, "keep@example.net"]),
                                     ("p-3@acme.example", SUBJECT, ["colleague@example.net"])):
            refused, code = self.transaction(sender, rcpts, message(msgid, sender, rcpts))
            self.assertEqual((refused, code), ({}, 250))
        h.wait_delivered(3, match=lambda d: (d.header("Message-ID") or "").startswith("<p-"))
        h.ctl("consent", "grant", "acme", SUBJECT)
        h.ctl("consent", "unsubscribe", "acme", SUBJECT)

        # Mail from an example.net address through acme's network is not acme's (network
        # identification needs the org's sender domain): --all-orgs finds it too.
        self.assertEqual(len(self.export(SUBJECT)["messages"]), 2)
        doc = self.export(SUBJECT, org=None)
        self.assertEqual(doc["address"], NORMAL)
        self.assertEqual(doc["orgs"], ["acme"])
        self.assertEqual(len(doc["messages"]), 3, doc["messages"])
        roles = sorted(tuple(m["roles"]) for m in doc["messages"])
        self.assertEqual(roles, [("recipient",), ("recipient",), ("sender",)])
        tracked = [m for m in doc["messages"] if m["tracking"].get("status") == "tracked"]
        self.assertTrue(tracked, doc["messages"])
        self.assertTrue(any("https://acme.example/offer?id=7" in json.dumps(m["tracking"]) for m in tracked))
        self.assertEqual([c["state"] for c in doc["consent"]], ["unsubscribed"])
        self.assertEqual([s["state"] for s in doc["suppression"]], ["unsubscribed"])
        self.assertGreaterEqual(len(doc["audit"]), 2)
        self.assertTrue(mentions(self.mdb_dump(), NORMAL))

        r = h.ctl("erase", "--all-orgs", SUBJECT)
        self.assertIn("erased", r.stdout.lower())
        # The API hears of it (the event carries the address, to the org's own controller).
        def erased():
            return [e for e in h.api.events_of_type("subject.erased") if e["subject"]["address"] == NORMAL]
        self.assertTrue(h.api.wait_for(erased, 20), "no subject.erased event at the API")
        [ev] = erased()
        self.assertEqual(ev["org"], "acme")
        self.assertEqual(ev["subject"]["address"], NORMAL)
        # Once the event is acknowledged nothing the store holds names the address.
        self.assertTrue(h.api.wait_for(
            lambda: json.loads(h.ctl("outbox", "stats", "--json").stdout)["queued"] == 0, 20))
        self.assertEqual(mentions(self.mdb_dump(), NORMAL, SUBJECT), [])
        empty = self.export(SUBJECT, org=None)
        self.assertEqual((empty["messages"], empty["consent"], empty["suppression"], empty["audit"]),
                         ([], [], [], []))
        # The other recipient's record stays, without the address; its count does not change.
        kept = [m for m in h.ctl_messages() if m["message_id"] == "<p-2@acme.example>"]
        self.assertEqual(len(kept), 1)
        self.assertEqual(kept[0]["recipients"], ["keep@example.net"])
        self.assertEqual(kept[0]["recipient_count"], 2)
        self.assertEqual([m for m in h.ctl_messages() if m["message_id"] in ("<p-1@acme.example>",
                                                                             "<p-3@acme.example>")], [])
        # The erasure is audited without the address.
        audit = h.ctl("audit", "--json").stdout
        self.assertIn("subject.erase", audit)
        self.assertEqual(mentions(audit.encode(), NORMAL), [])

        # Compaction (the daemon stopped: it holds the writer lock) leaves no old page behind.
        r = h.ctl("store", "compact", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("stop it first", r.stderr)
        h.milter.stop()
        try:
            r = h.ctl("store", "compact")
            with open(os.path.join(h.store_dir, "cllavio.mdb"), "rb") as f:
                raw = f.read()
            self.assertEqual(mentions(raw, NORMAL, SUBJECT), [])
            self.assertTrue(mentions(raw, "keep@example.net"))  # what was not erased is still there
        finally:
            h.milter.start()
        # After the swap the daemon still refuses a campaign to the erased address at RCPT TO
        # (the tombstone), and records new mail. (The refused recipient is recorded as
        # suppressed: new data, after the erase.)
        refused, code = self.transaction("news@acme.example", [SUBJECT, "other@example.net"],
                                         message("p-4@acme.example", "news@acme.example", ["x"], html=False))
        self.assertEqual(list(refused), [SUBJECT])
        self.assertEqual(refused[SUBJECT][0], 550)
        self.assertIn("unsubscribed", refused[SUBJECT][1])
        self.assertEqual(code, 250)

        refused, code = self.transaction("alice@acme.example", ["after@example.net"],
                                         message("p-6@acme.example", "alice@acme.example", ["after@example.net"]))
        self.assertEqual((refused, code), ({}, 250))
        h.wait_delivered(1, match=lambda d: d.header("Message-ID") == "<p-6@acme.example>")

    def test_erasure_request_from_the_api_is_applied(self):
        h = self.h
        refused, code = self.transaction("alice@acme.example", [FROM_API],
                                         message("api-1@acme.example", "alice@acme.example", [FROM_API]))
        self.assertEqual((refused, code), ({}, 250))
        h.wait_delivered(1, match=lambda d: d.header("Message-ID") == "<api-1@acme.example>")
        deadline = time.monotonic() + 10
        while not self.export(FROM_API)["messages"] and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(len(self.export(FROM_API)["messages"]), 1)
        h.api.add_erasure("acme", FROM_API)
        deadline = time.monotonic() + 20
        while self.export(FROM_API)["messages"] and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.export(FROM_API)["messages"], [])
        audit = [json.loads(line) for line in h.ctl("audit", "--json").stdout.splitlines() if line.strip()]
        mine = [a for a in audit if a.get("action") == "subject.erase" and a.get("source") == "api"]
        self.assertTrue(mine, audit)
        self.assertTrue(h.api.wait_for(
            lambda: any(e["subject"]["address"] == FROM_API for e in h.api.events_of_type("subject.erased")), 20))


if __name__ == "__main__":
    import unittest
    unittest.main()
