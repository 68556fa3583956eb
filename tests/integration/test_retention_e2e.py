"""Retention with a real Postfix: records are pruned while mail keeps flowing, every message
is delivered unchanged, and the pruner logs its summary line."""

import re
import time
import unittest
from datetime import datetime

from common import ALL_ORGS, HarnessCase, plain_message


def age_s(rec: dict) -> float:
    at = rec.get("received_at_us")
    if at is not None:
        return time.time() - at / 1e6
    t = datetime.strptime(rec["received_at"].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
    return time.time() - (t - datetime(1970, 1, 1)).total_seconds()


class PrunedWhileRunning(HarnessCase):
    harness_kwargs = dict(milter="unix", orgs=ALL_ORGS, default_action="tempfail",
                          settings={"retention.messages": "3s", "retention.rejects": "3s",
                                    "retention.prune_interval_s": 1})

    def test_old_records_go_while_mail_flows(self):
        h = self.h
        sent = {}
        max_age = 0.0
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < 10:
            msgid = f"ret{i}@x"
            msg = plain_message(msgid, sender="ceo@initech.example")
            self.send(msg, "ceo@initech.example", ["bob@example.net"])
            sent[msgid] = msg
            i += 1
            if i % 5 == 0:
                recs = h.ctl_messages()
                if recs and time.monotonic() - start > 6:
                    max_age = max(max_age, max(age_s(r) for r in recs))
        # Nothing in flight was touched: every message arrived byte for byte.
        delivered = h.wait_delivered(len(sent), timeout=60)
        by_id = {d.header("Message-ID"): d for d in delivered}
        for msgid, msg in sent.items():
            self.assertIn(f"<{msgid}>", by_id)
            self.assertIdentical(by_id[f"<{msgid}>"], msg)
        # Records older than retention + interval + a margin are gone while it runs.
        self.assertGreater(max_age, 0.0)
        self.assertLess(max_age, 3 + 1 + 2.5)
        recs = h.ctl_messages()
        self.assertLess(len(recs), len(sent))
        ids = {r["message_id"] for r in recs}
        self.assertNotIn("<ret0@x>", ids)
        h.wait_log(r"prune: removed [1-9]\d* \(messages [1-9]\d*, rejects \d+, delivery states \d+, audit \d+, "
                   r"dead letters \d+, chains \d+, expiries \d+\) in \d+ transactions, \d+ms \(longest \d+ms\); "
                   r"store \d+% of \d+ MB")
        # Soon nothing is left at all.
        deadline = time.monotonic() + 10
        while h.ctl_messages() and time.monotonic() < deadline:
            time.sleep(0.5)
        self.assertEqual(h.ctl_messages(), [])


if __name__ == "__main__":
    unittest.main()
