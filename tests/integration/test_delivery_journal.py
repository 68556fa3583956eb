"""Delivery outcomes read from the systemd journal ([delivery] log = "journal:DIR"), without a
running journald: the test hands the real Postfix's log lines to systemd-journal-remote, which
writes them as journal entries (mail facility) into DIR while the follower reads it, as journald
would. Checked: each recipient's state and one final event each; a hard bounce suppresses; a
kill -9 of the daemon between appends, and a second journal file appearing, lose and repeat
nothing (the checkpoint is the journal cursor, stored with what the entries produced).

The daemon runs as root here: journal-remote writes its files 0640 root, and the journal is
read by members of systemd-journal on a real system (docs/delivery.md).
"""

import calendar
import json
import os
import re
import signal
import time
import unittest

import harness
import journal_writer
from common import plain_message
from routes import ACCEPT, USER_UNKNOWN

SIGNING = "delivery-journal-signing-secret"
ORG = """id = "acme"
domains = ["acme.example"]
networks = ["127.0.0.1/32"]
[[stream]]
name = "campaigns"
senders = ["news@acme.example"]
kind = "campaign"
"""
# Postfix's maillog_file line: "Dec 01 04:24:53 mx postfix/smtp[21066]: text"
LINE = re.compile(r"^(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\S+) ([^\[:]+)(?:\[(\d+)\])?: (.*)$")
MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                      "Nov", "Dec"), 1)}


def as_entries(lines):
    """Postfix log lines as journal entries (realtime_us, host, identifier, pid, message)."""
    year = time.gmtime().tm_year
    out = []
    for n, line in enumerate(lines):
        m = LINE.match(line)
        if not m:
            continue
        mon, day, hh, mm, ss, host, ident, pid, msg = m.groups()
        secs = calendar.timegm((year, MONTHS[mon], int(day), int(hh), int(mm), int(ss)))  # the harness runs in UTC
        out.append((secs * 1_000_000 + n, host, ident, pid, msg))
    return out


class JournalFollower(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = h = harness.Harness(
            milter="unix", milter_user=None, orgs={"acme": ORG}, default_action="accept",
            api=dict(signing_secret=SIGNING.encode(), org_keys={"acme": "acme-key"}),
            settings={"api.linger_ms": 50, "api.consent_poll_s": 0},
            sinks={"ok": ACCEPT, "unknown": USER_UNKNOWN}, routes={"ok.test": "ok", "unknown.test": "unknown"})
        try:
            cls.journal = os.path.join(h.dir, "journal")
            os.makedirs(cls.journal)
            h.milter.write_config(settings={"delivery.log": "journal:" + cls.journal})
            h.start()
        except BaseException:
            h.close()
            raise
        cls.api = h.api
        cls.relayed = 0  # maillog lines handed to the journal so far

    @classmethod
    def tearDownClass(cls):
        cls.h.close()

    def relay(self, file_name="remote.journal"):
        """Appends the maillog lines not relayed yet to the journal."""
        with open(self.h.maillog_path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        new = lines[self.relayed:]
        type(self).relayed = len(lines)
        if new:
            journal_writer.append_entries(self.journal, as_entries(new), file_name=file_name)
        return len(new)

    def send(self, msgid, sender, rcpts):
        r = self.h.swaks(sender=sender, rcpts=rcpts, data=plain_message(msgid, sender=sender, rcpt=rcpts[0]))
        self.assertEqual(r.returncode, 0, r.stdout)
        deadline = time.monotonic() + 20
        while True:
            rows = [x for x in self.h.ctl_messages() if x["message_id"] == f"<{msgid}>"]
            if rows or time.monotonic() > deadline:
                self.assertEqual(len(rows), 1)
                return rows[0]
            time.sleep(0.1)

    def logged(self, qid, n):
        self.h.wait_status(n, qid=qid, timeout=30)

    def states(self, qid):
        out = self.h.ctl("show", qid).stdout
        rec = json.loads("[" + re.sub(r"}\s*{", "},{", out.strip()) + "]")[-1]
        return {d["recipient"]: d["state"] for d in rec["delivery"]}

    def wait_states(self, qid, want, timeout=30):
        deadline = time.monotonic() + timeout
        while self.states(qid) != want and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.states(qid), want)

    def test_outcomes_from_journal_entries_across_a_kill_and_a_new_file(self):
        h = self.h
        one = self.send("j1@acme.example", "news@acme.example", ["a@ok.test", "b@unknown.test"])
        self.logged(one["queue_id"], 2)
        self.assertGreater(self.relay(), 0)
        self.wait_states(one["queue_id"], {"a@ok.test": "delivered", "b@unknown.test": "bounced"})
        self.assertEqual(json.loads(h.ctl("consent", "show", "acme", "b@unknown.test").stdout)["state"], "bounced")

        two = self.send("j2@acme.example", "alice@acme.example", ["c@ok.test"])
        self.logged(two["queue_id"], 1)
        self.assertEqual(h.kill_milter(signal.SIGKILL), -9)  # the entries arrive while it is down
        self.relay()
        h.restart_milter()
        self.wait_states(two["queue_id"], {"c@ok.test": "delivered"})

        three = self.send("j3@acme.example", "alice@acme.example", ["d@ok.test"])
        self.logged(three["queue_id"], 1)
        self.relay(file_name="remote-2.journal")  # a new journal file, as after journald's rotation
        self.wait_states(three["queue_id"], {"d@ok.test": "delivered"})

        ids = {one["id"], two["id"], three["id"]}

        def finals():
            return [e for e in self.api.events if e.get("message", {}).get("id") in ids
                    and e["type"] in ("message.delivered", "message.bounced")]
        self.assertTrue(self.api.wait_for(lambda: len({e["id"] for e in finals()}) == 4, 30))
        time.sleep(1)
        per = {}
        for e in {e["id"]: e for e in finals()}.values():
            per.setdefault(e["delivery"]["recipient"], []).append(e["type"])
        self.assertEqual(per, {"a@ok.test": ["message.delivered"], "b@unknown.test": ["message.bounced"],
                               "c@ok.test": ["message.delivered"], "d@ok.test": ["message.delivered"]})
        follow = json.loads(h.ctl("delivery", "follow", "--json").stdout)
        self.assertEqual(follow["gaps"], [])
        self.assertTrue(follow["log"].startswith("journal:"))
        self.assertIn("s=", str(follow["position"]))  # a journal cursor


if __name__ == "__main__":
    unittest.main()
