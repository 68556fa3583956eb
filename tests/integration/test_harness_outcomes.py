"""Self-test of the harness pieces that delivery-outcome tests need, against the real Postfix:
several next hops (routes.py), short queue lifetimes (fast_expiry), maillog rotation and
parsing (maillog.py), a second milter that rejects at end of message (reject_milter.c) and
killing/restarting the milter on the same store and socket.

    cd build && ctest -R integration.test_harness_outcomes --output-on-failure
    cd tests/integration && python3 -m unittest -v test_harness_outcomes

Needs root and the Debian packages postfix and swaks; the reject milter and null milter
(CLLAVIO_REJECT_MILTER, CLLAVIO_NULL_MILTER) and cllavio-milter (CLLAVIO_MILTER) from the
build, else those tests skip.
"""

import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import maillog  # noqa: E402
import procs  # noqa: E402
import reject_milter  # noqa: E402
from harness import ACCEPT, BLOCKED, MAILBOX_FULL, USER_UNKNOWN, fast_expiry  # noqa: E402
from test_harness_selftest import PLAIN_MSG, _HarnessCase  # noqa: E402

MILTER_BIN = os.environ.get("CLLAVIO_MILTER", harness.DEFAULT_MILTER)
NULL_MILTER = os.environ.get("CLLAVIO_NULL_MILTER", os.path.join(os.path.dirname(harness.DEFAULT_MILTER),
                                                                 "..", "bench", "null-milter"))


read = procs._read


def message(msgid: str, *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return (f"From: <alice@acme.example>\r\nTo: <bob@example.net>\r\nSubject: outcomes\r\n"
            f"Message-ID: <{msgid}@acme.example>\r\n{extra}\r\nbody\r\n").encode()


class ParseLineTest(unittest.TestCase):
    """maillog.parse_line on lines as Postfix 3.7's postlogd wrote them."""

    def test_shapes(self):
        r = maillog.parse_line("Dec 01 04:19:07 mx postfix/smtp[16191]: CDA9EA7448D: to=<c@unknown.test>, "
                               "relay=127.0.0.1[127.0.0.1]:53688, delay=0.66, delays=0.11/0.27/0.05/0.24, "
                               "dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 User "
                               "unknown (in reply to RCPT TO command))")
        self.assertEqual((r.qid, r.program, r.to, r.dsn, r.status), ("CDA9EA7448D", "smtp", "c@unknown.test",
                                                                     "5.1.1", "bounced"))
        self.assertEqual(r.relay, "127.0.0.1[127.0.0.1]:53688")
        self.assertEqual(r.reason, "host 127.0.0.1[127.0.0.1] said: 550 5.1.1 User unknown "
                                   "(in reply to RCPT TO command)")
        r = maillog.parse_line("Dec 01 04:19:26 mx postfix/qmgr[16184]: CDA9EA7448D: from=<alice@acme.example>, "
                               "status=expired, returned to sender")
        self.assertEqual((r.status, r.reason, r.to, r.fields["from"]), ("expired", "returned to sender", None,
                                                                        "alice@acme.example"))
        r = maillog.parse_line("Dec  1 04:19:07 host postfix-out/relay/smtp[1]: 3wBkXS6gy6zB4S4: to=<a@b>, "
                               "orig_to=<c@d>, relay=none, delay=1, dsn=4.4.1, status=deferred (connect refused)")
        self.assertEqual((r.qid, r.program, r.orig_to, r.status), ("3wBkXS6gy6zB4S4", "smtp", "c@d", "deferred"))
        for line in ("Dec 01 04:19:06 mx postfix/smtpd[16186]: connect from localhost[127.0.0.1]",
                     "Dec 01 04:19:06 mx postfix/smtpd[16186]: warning: hostname x does not resolve"):
            self.assertIsNone(maillog.parse_line(line))


class RoutesAndExpiryTest(_HarnessCase):
    """Four next hops: accept, 452 mailbox full, 550 5.1.1, 554 5.7.1; deferred mail expires."""
    harness_kwargs = dict(
        milter=None,
        sinks={"ok": ACCEPT, "full": MAILBOX_FULL, "unknown": USER_UNKNOWN, "blocked": BLOCKED},
        routes={"ok.test": "ok", "full.test": "full", "unknown.test": "unknown", "blocked.test": "blocked"},
        postfix_main=fast_expiry(lifetime="20s", backoff="5s"))

    def test_each_domain_gets_its_outcome(self):
        h = self.h
        rcpts = ["a@ok.test", "b@full.test", "c@unknown.test", "d@blocked.test"]
        r = h.swaks(sender="alice@acme.example", rcpts=rcpts, data=message("routes-1"))
        self.assertEqual(r.returncode, 0, r.stdout)
        qid = re.search(r"queued as ([0-9A-F]+)", r.stdout).group(1)
        [d] = h.sinks["ok"].wait_delivered(1, timeout=30)
        self.assertEqual((d.queue_id, d.rcpts), (qid, ["a@ok.test"]))
        # the sink has it before Postfix logs status=sent (after the sink's reply): wait for the line
        h.wait_status(1, qid=qid, to="a@ok.test", status="sent")
        h.wait_status(1, qid=qid, to="b@full.test", status="deferred")
        h.wait_status(2, qid=qid, status="bounced")
        want = {"a@ok.test": ("sent", "2.0.0", h.sinks["ok"]), "b@full.test": ("deferred", "4.2.2", h.sinks["full"]),
                "c@unknown.test": ("bounced", "5.1.1", h.sinks["unknown"]),
                "d@blocked.test": ("bounced", "5.7.1", h.sinks["blocked"])}
        for to, (status, dsn, sink) in want.items():
            first = h.maillog_lines(qid=qid, to=to)[0]
            self.assertEqual((first.status, first.dsn), (status, dsn), first.line)
            self.assertTrue(first.relay.endswith(f":{sink.port}"), first.line)
        self.assertIn("452 4.2.2 Mailbox full", h.maillog_lines(qid=qid, to="b@full.test")[0].reason)
        self.assertIn("554 5.7.1 Blocked", h.maillog_lines(qid=qid, to="d@blocked.test")[0].reason)
        # the rejecting sinks took nothing; the bounce for c and d went to the relayhost sink
        for name in ("full", "unknown", "blocked"):
            self.assertEqual(h.sinks[name].received(), [])
            # readiness probe + Postfix; smtp-sink -c writes its counters a moment after the session
            procs._wait_until(lambda: h.sinks[name].counters()["sess"] >= 2, 10,
                              f"{name}: 2 sessions in smtp-sink's counters")
        note = h.wait_log(rf"{qid}: sender non-delivery notification: ([0-9A-F]+)", source="maillog")
        [b] = h.wait_delivered(1, match=lambda d: d.queue_id == note.group(1))
        self.assertEqual((b.sender, b.rcpts), ("", ["alice@acme.example"]))
        self.assertIn("ok [127.0.0.1]", h.sink_report())

    def test_deferred_recipient_expires(self):
        h = self.h
        t0 = time.monotonic()
        r = h.swaks(sender="alice@acme.example", rcpts=["e@full.test"], data=message("expiry-1"))
        self.assertEqual(r.returncode, 0, r.stdout)
        qid = re.search(r"queued as ([0-9A-F]+)", r.stdout).group(1)
        [exp] = h.wait_status(1, timeout=60, qid=qid, status="expired")
        took = time.monotonic() - t0
        self.assertEqual((exp.program, exp.reason, exp.fields["from"]), ("qmgr", "returned to sender",
                                                                         "alice@acme.example"))
        deferred = h.maillog_lines(qid=qid, to="e@full.test", status="deferred")
        self.assertGreaterEqual(len(deferred), 3, deferred)
        self.assertTrue(all(d.dsn == "4.2.2" for d in deferred))
        self.assertEqual(h.maillog_lines(qid=qid, to="e@full.test", status="bounced"), [])  # no per-rcpt line
        note = h.wait_log(rf"{qid}: sender non-delivery notification: ([0-9A-F]+)", source="maillog")
        h.wait_log(rf"{qid}: removed", source="maillog")
        h.wait_delivered(1, match=lambda d: d.queue_id == note.group(1) and d.sender == "")
        print(f"\n[outcomes] expiry: {len(deferred)} deferred lines, expired {took:.1f}s after "
              f"submission (lifetime 20s, backoff 5s)", file=sys.stderr)
        self.assertLess(took, 40)

    def test_sink_and_route_added_while_running(self):
        h = self.h
        late = h.add_sink("late", **USER_UNKNOWN)
        h.set_routes({"late.test": "late"})
        r = h.swaks(sender="alice@acme.example", rcpts=["f@late.test"], data=message("late-1"))
        self.assertEqual(r.returncode, 0, r.stdout)
        [rec] = h.wait_status(1, to="f@late.test", status="bounced")
        self.assertEqual(rec.dsn, "5.1.1")
        self.assertTrue(rec.relay.endswith(f":{late.port}"), rec.line)


class RotationTest(_HarnessCase):
    harness_kwargs = dict(milter=None)

    def send(self, rcpt):
        r = self.h.swaks(sender="alice@acme.example", rcpts=[rcpt], data=PLAIN_MSG)
        self.assertEqual(r.returncode, 0, r.stdout)
        return self.h.wait_status(1, to=rcpt, status="sent", timeout=30)[0]

    def test_rotations_keep_the_log_flowing(self):
        h = self.h
        path = h.maillog_path
        first = self.send("r1@example.net")
        old = h.rotate_log("rename")
        self.assertEqual(old, path + ".1")
        self.assertIn(f"{first.qid}: to=<r1@example.net>", read(old))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)  # postlogd creates it 0600
        second = self.send("r2@example.net")
        self.assertIn(f"{second.qid}: to=<r2@example.net>", read(path))
        self.assertEqual(h.maillog_lines(to="r2@example.net", rotated=False)[0].file, path)

        h.rotate_log("rename", mode=0o644)  # .1 -> .2, PATH -> .1, new PATH 0644
        self.assertIn(f"{first.qid}: to=<r1@example.net>", read(path + ".2"))
        self.assertIn(f"{second.qid}: to=<r2@example.net>", read(path + ".1"))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
        third = self.send("r3@example.net")

        size_before = os.path.getsize(path)
        ino = os.stat(path).st_ino
        old = h.rotate_log("copytruncate")
        self.assertEqual(os.stat(path).st_ino, ino)
        self.assertGreaterEqual(os.path.getsize(old), size_before)
        self.assertIn(f"{third.qid}: to=<r3@example.net>", read(old))
        fourth = self.send("r4@example.net")
        data = read(path).encode()
        self.assertNotIn(b"\0", data)  # postlogd appends (O_APPEND): no hole after the truncate
        self.assertIn(f"{fourth.qid}: to=<r4@example.net>".encode(), data)
        self.assertEqual([n for n in sorted(os.listdir(h.dir)) if n.startswith("maillog")],
                         ["maillog", "maillog.1", "maillog.2", "maillog.3"])

        # the reader sees every outcome across PATH.3..PATH.1 and PATH, in order
        sent = [r.to for r in h.maillog_lines(status="sent")]
        self.assertEqual(sent, ["r1@example.net", "r2@example.net", "r3@example.net", "r4@example.net"])

        # Postfix's own naming: PATH.%Y%m%d-%H%M%S, gzip
        h.set_postfix_params({"maillog_file_rotate_suffix": "%Y%m%d-%H%M%S", "maillog_file_compressor": "gzip"})
        old = h.rotate_log("postfix")
        self.assertRegex(os.path.basename(old), r"^maillog\.\d{8}-\d{6}\.gz$")
        fifth = self.send("r5@example.net")
        self.assertIn(f"{fifth.qid}: to=<r5@example.net>", read(path))
        self.assertIn("r4@example.net", [r.to for r in h.maillog_lines(status="sent")])  # read from the .gz
        print(f"\n[outcomes] rotated files: {sorted(n for n in os.listdir(h.dir) if n.startswith('maillog'))}",
              file=sys.stderr)


@unittest.skipUnless(os.access(NULL_MILTER, os.X_OK) and os.access(reject_milter.reject_milter_binary(), os.X_OK),
                     "null-milter / reject-milter not built (CLLAVIO_NULL_MILTER, CLLAVIO_REJECT_MILTER)")
class SecondMilterTest(_HarnessCase):
    """null milter first (standing in for cllavio), then a 550 and a 451 reject milter."""
    harness_kwargs = dict(milter="unix", milter_command=[NULL_MILTER, "{socket}"],
                          reject_milter=[{"code": 550, "text": "Rejected by the second milter"},
                                         {"code": 451, "xcode": "4.7.0", "text": "Try later",
                                          "header": "X-Test-Tempfail: yes"}])

    def test_marked_message_is_refused_at_end_of_message(self):
        h = self.h
        r = h.swaks(sender="alice@acme.example", rcpts=["g@example.net"],
                    data=message("reject-1", "X-Test-Reject: yes"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("550 5.7.1 Rejected by the second milter", r.stdout)
        m = h.wait_log(r"^.*milter-reject: END-OF-MESSAGE .*Rejected by the second milter.*$", source="maillog")
        self.assertIn("to=<g@example.net>", m.group(0))
        # Postfix names one recipient only, the last one: the others are not in the log at all
        r = h.swaks(sender="alice@acme.example", rcpts=["g1@example.net", "g2@example.net", "g3@example.net"],
                    data=message("reject-4", "X-Test-Reject: yes"))
        self.assertIn("550 5.7.1", r.stdout)
        m = h.wait_log(r"^.*milter-reject: END-OF-MESSAGE .*to=<g\d@example\.net>.*$", source="maillog")
        self.assertIn("to=<g3@example.net>", m.group(0))
        self.assertNotRegex(h.maillog(), r"to=<g[12]@example\.net>")
        self.assertEqual(h.maillog_lines(pattern="milter-reject"), [])  # not an outcome line

        r = h.swaks(sender="alice@acme.example", rcpts=["h@example.net"],
                    data=message("reject-2", "x-test-tempfail:   YES  "))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("451 4.7.0 Try later", r.stdout)
        h.wait_log(r"milter-reject: END-OF-MESSAGE .*4\.7\.0 Try later.*to=<h@example\.net>", source="maillog")
        self.assertEqual(h.delivered(lambda d: d.rcpts in (["g@example.net"], ["h@example.net"])), [])

        r = h.swaks(sender="alice@acme.example", rcpts=["i@example.net"],
                    data=message("reject-3", "X-Test-Reject: no"))
        self.assertEqual(r.returncode, 0, r.stdout)
        h.wait_delivered(1, match=lambda d: d.rcpts == ["i@example.net"])
        self.assertEqual(len(h.rejects), 2)
        self.assertIn(h.reject.postfix_address, read(os.path.join(h.etc_dir, "main.cf")))


@unittest.skipUnless(os.access(MILTER_BIN, os.X_OK), f"milter binary {MILTER_BIN} not built (set CLLAVIO_MILTER)")
class KillRestartTest(_HarnessCase):
    harness_kwargs = dict(milter="unix", orgs={"acme": {"id": "acme", "domains": ["acme.example"],
                                                        "networks": ["127.0.0.1/32"]}})

    def test_sigkill_then_restart_on_the_same_store_and_socket(self):
        h = self.h
        r = h.swaks(sender="alice@acme.example", rcpts=["j@example.net"], data=message("kill-1"))
        self.assertEqual(r.returncode, 0, r.stdout)
        [d] = h.wait_delivered(1, match=lambda d: d.rcpts == ["j@example.net"])
        h.wait_log(rf"{d.queue_id}: .*action=accept")
        old_pid = h.milter_proc.pid
        self.assertEqual(h.milter.kill(signal.SIGKILL), -signal.SIGKILL)
        self.assertFalse(h.milter.running())
        r = h.swaks(sender="alice@acme.example", rcpts=["k@example.net"], data=message("kill-2"))
        self.assertIn("451 4.7.1", r.stdout)  # milter_default_action = tempfail
        h.restart_milter()
        self.assertNotEqual(h.milter_proc.pid, old_pid)
        self.assertTrue(os.path.exists(h.milter_socket))
        r = h.swaks(sender="alice@acme.example", rcpts=["l@example.net"], data=message("kill-3"))
        self.assertEqual(r.returncode, 0, r.stdout + h.milter_log()[-2000:])
        [d2] = h.wait_delivered(1, match=lambda d: d.rcpts == ["l@example.net"])
        h.wait_log(rf"{d2.queue_id}: .*action=accept")
        self.assertLessEqual({d.queue_id, d2.queue_id}, {m["queue_id"] for m in h.ctl_messages()})


if __name__ == "__main__":
    unittest.main(verbosity=2)
