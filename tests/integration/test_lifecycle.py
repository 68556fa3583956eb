"""The daemon's life with a real Postfix: killed mid-transaction (Postfix's default action),
SIGHUP reload under load, invalid reloads, SIGTERM draining messages in flight, a full store,
and configuration checking."""

import os
import re
import signal
import smtplib
import subprocess
import threading
import time
import unittest

import harness
from common import ALL_ORGS, HarnessCase, ORG_INITECH, plain_message


def open_transaction(h, sender, rcpt):
    """An SMTP session stopped after RCPT TO: the milter has seen MAIL and RCPT."""
    s = smtplib.SMTP("127.0.0.1", h.smtp_port, timeout=30)
    s.ehlo("client.cllavio-it.test")
    code, _ = s.mail(sender)
    assert code == 250, code
    code, _ = s.rcpt(rcpt)
    assert code == 250, code
    return s


def finish_data(s, msg: bytes):
    """DATA with msg; returns the final (code, text) instead of raising."""
    code, text = s.docmd("DATA")
    if code != 354:
        return code, text
    s.send(harness.dot_stuff(msg) + b".\r\n")
    code, text = s.getreply()
    try:
        s.quit()
    except smtplib.SMTPException:
        pass
    return code, text


class KilledMilterDefaultAccept(HarnessCase):
    harness_kwargs = dict(milter="unix", orgs=ALL_ORGS, default_action="accept")

    def test_mail_passes_unfiltered_when_the_milter_dies_mid_transaction(self):
        h = self.h
        s = open_transaction(h, "ceo@initech.example", "bob@example.net")
        h.kill_milter()
        msg = plain_message("k1@x", sender="ceo@initech.example")
        code, text = finish_data(s, msg)
        self.assertEqual(code, 250, text)
        self.assertIdentical(self.delivered_one("k1@x"), msg)
        # Further mail keeps flowing while the milter is down ...
        msg2 = plain_message("k2@x", sender="ceo@initech.example")
        self.send(msg2, "ceo@initech.example", ["bob@example.net"])
        self.assertIdentical(self.delivered_one("k2@x"), msg2)
        # ... and is recorded again once it is back.
        h.start_milter()
        self.send(plain_message("k3@x", sender="ceo@initech.example"), "ceo@initech.example", ["bob@example.net"])
        d = self.delivered_one("k3@x")
        self.assertEqual(self.record(d.queue_id)["org"], "initech")
        self.assertNotIn("<k2@x>", [r["message_id"] for r in h.ctl_messages()])


class KilledMilterDefaultTempfail(HarnessCase):
    harness_kwargs = dict(milter="unix", orgs=ALL_ORGS, default_action="tempfail")

    def test_mail_is_tempfailed_when_the_milter_dies(self):
        h = self.h
        s = open_transaction(h, "ceo@initech.example", "bob@example.net")
        h.kill_milter()
        code, text = finish_data(s, plain_message("t1@x", sender="ceo@initech.example"))
        self.assertEqual(code, 451, text)
        self.assertIn(b"4.7.1", text)
        r = h.swaks(sender="ceo@initech.example", rcpts=["bob@example.net"], data=plain_message("t2@x"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("451 4.7.1", r.stdout)
        time.sleep(1)
        self.assertEqual(h.delivered(), [])
        h.start_milter()


class ReloadAndShutdown(HarnessCase):
    harness_kwargs = dict(milter="unix", orgs=ALL_ORGS)

    def setUp(self):
        if self.h.milter_proc.poll() is not None:
            self.h.start_milter()
        start = self.h.log_size()
        self.h.write_config(orgs=ALL_ORGS, settings={"milter.on_error": "accept"})
        self.h.reload_milter()
        # a test's first connection must see this configuration, not the one a test before left
        self.h.wait_log(r"reloaded ", start=start)

    def test_sighup_under_load_loses_nothing(self):
        h = self.h
        untrusting = dict(ALL_ORGS, initech=ORG_INITECH.replace("trust_sender_domain = true", ""))
        before = len(h.ctl_messages())
        log_start = h.log_size()
        count = 400
        result = {}
        load = threading.Thread(target=lambda: result.update(r=h.smtp_source(
            count=count, sessions=10, size=2000, sender="load@initech.example", rcpt="sink@example.net")))
        load.start()
        reloads = 0
        while load.is_alive():
            h.write_config(orgs=untrusting if reloads % 2 == 0 else ALL_ORGS)
            h.reload_milter()
            reloads += 1
            time.sleep(0.1)
        load.join()
        self.assertEqual(result["r"].returncode, 0, result["r"].stderr)
        self.assertGreaterEqual(reloads, 5)
        h.wait_delivered(count, timeout=120, match=lambda d: d.sender == "load@initech.example")
        deadline = time.monotonic() + 20
        while len(h.ctl_messages()) - before < count and time.monotonic() < deadline:
            time.sleep(0.2)
        recs = h.ctl_messages()[before:]
        self.assertEqual(len(recs), count)
        self.assertTrue(all(r["action"] == "accept" for r in recs))
        orgs = {r["org"] for r in recs}
        self.assertEqual(orgs, {"initech", ""}, "both configurations were in force during the run")
        log = h.milter_log()[log_start:]
        self.assertGreaterEqual(log.count("reloaded "), 5)
        self.assertNotIn("internal error", log)
        self.assertNotIn("error:", log)

    def test_invalid_reload_keeps_the_previous_configuration(self):
        h = self.h
        start = h.log_size()
        h.write_config(orgs=dict(ALL_ORGS, broken='id = "broken"\ndomains = ["broken.example"]\ncolour = "red"\n'))
        h.reload_milter()
        broken = os.path.join(h.orgs_dir, "broken.toml")
        h.wait_log(rf"error: reload: {re.escape(broken)}:3: unknown key 'colour'", start=start)
        h.wait_log(r"reload failed: 1 problem\(s\); the previous configuration stays in force", start=start)
        self.send(plain_message("inv1@x", sender="ceo@initech.example"), "ceo@initech.example", ["b@example.net"])
        d = self.delivered_one("inv1@x")
        self.assertEqual(self.record(d.queue_id)["org"], "initech")
        self.assertEqual(h.milter_proc.poll(), None)

    def test_a_second_instance_does_not_steal_the_socket(self):
        h = self.h
        exe = os.environ.get("CLLAVIO_MILTER", harness.DEFAULT_MILTER)
        r = subprocess.run([exe, "-c", h.config_path], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn(f"another process is already listening on {h.milter_socket}", r.stderr)
        self.send(plain_message("second@x", sender="ceo@initech.example"), "ceo@initech.example", ["b@example.net"])
        self.assertEqual(self.record(self.delivered_one("second@x").queue_id)["org"], "initech")

    def test_sigterm_finishes_the_message_in_flight_then_exits_0(self):
        h = self.h
        s = open_transaction(h, "ceo@initech.example", "bob@example.net")
        start = h.log_size()
        h.milter_proc.send_signal(signal.SIGTERM)
        h.wait_log(r"received SIGTERM: no new connections; finishing messages in flight", start=start)
        msg = plain_message("term1@x", sender="ceo@initech.example")
        code, text = finish_data(s, msg)
        self.assertEqual(code, 250, text)
        self.assertEqual(h.milter_proc.wait(30), 0)
        d = self.delivered_one("term1@x")
        self.assertIdentical(d, msg)
        self.assertEqual(self.record(d.queue_id)["org"], "initech")
        self.assertIn("stopped", h.milter_log()[start:])


class StoreFull(HarnessCase):
    harness_kwargs = dict(milter="unix", orgs=ALL_ORGS, default_action="tempfail",
                          settings={"store.map_size_mb": 2, "api.max_outbox_mb": 1})

    def test_mail_keeps_flowing_when_the_store_is_full(self):
        h = self.h
        # 200 recipients per message: each record and its index entries are ~25 KB, so 2 MiB fill quickly.
        rcpt = "a-long-recipient-name-to-fill-the-store-quickly@example.net"
        r = h.smtp_source(count=150, sessions=4, size=500, sender="bulk@initech.example", rcpt=rcpt,
                          extra_args=["-r", "200"])
        self.assertEqual(r.returncode, 0, r.stderr)
        h.wait_delivered(150, timeout=120, match=lambda d: d.sender == "bulk@initech.example")
        h.wait_log(r"STORE FULL: message not recorded, raise \[store\] map_size_mb: .*; on_error=accept")
        recorded = len(h.ctl_messages())
        self.assertGreater(recorded, 0)
        self.assertLess(recorded, 150)
        # With on_error = tempfail the same condition answers 451 4.3.0 instead.
        start = h.log_size()
        h.write_config(settings={"milter.on_error": "tempfail"})
        h.reload_milter()
        h.wait_log(r"reloaded", start=start)
        # Far larger than whatever space the fill left in the 1 MiB map (LMDB reuses freed
        # pages as later commits release them, so a record somewhat larger than the ones that
        # failed may still fit): 800 recipients of ~250 bytes are ~200 KB in the record, as
        # much in its address index entries and in its event.
        domain = ".".join(["d" * 60] * 3) + ".example"
        local = rcpt.split("@")[0]
        with smtplib.SMTP("127.0.0.1", h.smtp_port, timeout=120) as s:
            s.ehlo("client.cllavio-it.test")
            with self.assertRaises(smtplib.SMTPDataError) as refused:
                s.sendmail("bulk@initech.example", [f"x{i}-{local}@{domain}" for i in range(800)],
                           plain_message("full-1@x"))
        self.assertEqual(refused.exception.smtp_code, 451)
        self.assertIn(b"4.3.0 Temporary failure in the mail filter", refused.exception.smtp_error)


class ConfigCheck(unittest.TestCase):
    def test_bad_configuration_is_reported_with_file_and_line(self):
        exe = os.environ.get("CLLAVIO_MILTER", harness.DEFAULT_MILTER)
        ctl = os.environ.get("CLLAVIO_CTL", harness.DEFAULT_CTL)
        with _NoStart(settings={"milter.on_errror": "accept"}) as h:
            for argv in ([exe, "-n", "-c", h.config_path], [ctl, "-c", h.config_path, "check"],
                         [exe, "-c", h.config_path]):
                r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 78, argv)
                self.assertRegex(r.stderr, rf"{re.escape(h.config_path)}:\d+: unknown key 'milter\.on_errror' "
                                           r"\(did you mean 'milter\.on_error'\?\)")
            self.assertFalse(os.path.exists(os.path.join(h.cllavio_dir, "run", "milter.sock")))
            h.write_config(settings={"milter.on_errror": None})
            r = subprocess.run([exe, "-n", "-c", h.config_path], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("OK (4 organizations", r.stdout)


class _NoStart(harness.Harness):
    """A harness whose files are written but nothing is started."""

    def __init__(self, **kw):
        super().__init__(milter="unix", orgs=ALL_ORGS, **kw)

    def __enter__(self):
        return self


if __name__ == "__main__":
    unittest.main()
