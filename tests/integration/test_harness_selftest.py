"""Self-test of tests/integration/harness.py: the private Postfix works on its own (no milter),
with SASL, side by side with a second instance, and (if the binary exists) with cllavio-milter.

    cd /work/main && python3 -m unittest -v tests/integration/test_harness_selftest.py
    CLLAVIO_MILTER=/path/to/cllavio-milter ...   # enables MilterPassThroughTest

Needs root and the Debian packages postfix, swaks, dovecot-core.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import procs  # noqa: E402

MILTER_BIN = os.environ.get("CLLAVIO_MILTER", harness.DEFAULT_MILTER)

PLAIN_MSG = (
    b"From: Alice <alice@acme.example>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: harness selftest\r\n"
    b"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\n"
    b"Message-ID: <selftest-1@acme.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"X-Folded: first part\r\n"
    b"\tsecond part\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b".a line starting with a dot\r\n"
    b".\r\n"
    b"caf\xc3\xa9 \xe2\x82\xac  trailing spaces  \r\n"
    b"\r\n"
    b"-- \r\n"
    b"Alice\r\n"
)


def _rcpt_is(addr):
    return lambda d: d.rcpts == [addr]


class _HarnessCase(unittest.TestCase):
    """Starts one harness for the class and checks on teardown that nothing is left."""

    harness_kwargs: dict = {}

    @classmethod
    def setUpClass(cls):
        cls.h = harness.Harness(**cls.harness_kwargs)
        cls.h.start()

    @classmethod
    def tearDownClass(cls):
        h = cls.h
        h.close()
        assert_closed(h)


def assert_closed(h):
    leftovers = h.postfix.instance_pids()
    if leftovers:
        raise AssertionError(f"Postfix processes of {h.dir} still alive: {leftovers}")
    for name in ("sink_proc", "dovecot_proc", "milter_proc"):
        p = getattr(h, name)
        if p is not None and p.poll() is None:
            raise AssertionError(f"{name} (pid {p.pid}) still running")
        if p is not None and procs._pgrp_alive(p.pid):
            raise AssertionError(f"children of {name} (pgid {p.pid}) still running")
    if os.environ.get("CLLAVIO_KEEP_TMP") != "1" and os.path.exists(h.dir):
        raise AssertionError(f"{h.dir} not removed")


class PortClaimTest(unittest.TestCase):
    """Test processes run side by side: a port one process handed out is never handed
    out by another while the first lives, and is free for others once it has ended."""

    def test_a_claimed_port_is_not_handed_to_another_process(self):
        import subprocess
        mine = [procs.free_port() for _ in range(20)]
        self.assertEqual(len(set(mine)), 20)
        here = os.path.dirname(os.path.abspath(__file__))
        probe = (f"import sys; sys.path.insert(0, {here!r}); import procs; "
                 f"print(sum(procs._claim_port(p) for p in {mine!r}))")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.stdout.strip(), "0", out.stderr)
        # A claim ends with its process: the probe's own claims are free again now.
        spare = [p for p in range(61000, 61010) if procs._port_free(p)][:3]
        probe2 = (f"import sys; sys.path.insert(0, {here!r}); import procs; "
                  f"print(sum(procs._claim_port(p) for p in {spare!r}))")
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", probe2], capture_output=True, text=True, timeout=30)
            self.assertEqual(out.stdout.strip(), str(len(spare)), out.stderr)


class PostfixAloneTest(_HarnessCase):
    harness_kwargs = dict(milter=None)

    def test_swaks_message_arrives_byte_identical(self):
        h = self.h
        r = h.swaks(sender="alice@acme.example", rcpts=["bob@example.net"], data=PLAIN_MSG)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        [d] = h.wait_delivered(1, timeout=30, match=_rcpt_is("bob@example.net"))
        self.assertEqual(d.sender, "alice@acme.example")
        self.assertEqual(d.rcpts, ["bob@example.net"])
        self.assertEqual(d.body_after_received(), PLAIN_MSG)
        # the removed header is the one our Postfix added, and it names the queue id
        self.assertTrue(d.raw.startswith(b"Received: from client.cllavio-it.test (localhost [127.0.0.1])\r\n"
                                         b"\tby mx.cllavio-it.test (Postfix) with ESMTP id "), d.raw[:200])
        self.assertRegex(d.queue_id or "", r"^[0-9A-F]{8,12}$")
        self.assertIn(f"queued as {d.queue_id}", r.stdout)
        h.wait_log(rf"{d.queue_id}: to=<bob@example.net>.*status=sent", source="maillog")

    def test_lf_input_is_sent_as_crlf(self):
        h = self.h
        msg = b"Subject: lf input\nX-Test: 1\n\nline one\n..two dots\nno final newline"
        r = h.swaks(sender="alice@acme.example", rcpts=["lf@example.net"], data=msg)
        self.assertEqual(r.returncode, 0, r.stdout)
        [d] = h.wait_delivered(1, timeout=30, match=_rcpt_is("lf@example.net"))
        self.assertEqual(d.body_after_received(), harness.to_crlf(msg) + b"\r\n")

    def test_sendmail_submission_arrives(self):
        h = self.h
        msg = b"From: alice@acme.example\nTo: carol@example.net\nSubject: via sendmail\n\nbody\n"
        r = h.sendmail(msg, "alice@acme.example", ["carol@example.net"])
        self.assertEqual(r.returncode, 0, r.stderr)
        [d] = h.wait_delivered(1, timeout=30, match=_rcpt_is("carol@example.net"))
        self.assertEqual(d.sender, "alice@acme.example")
        self.assertEqual(d.header("Subject"), "via sendmail")
        self.assertIsNotNone(d.queue_id)
        self.assertTrue(d.body_after_received().endswith(b"\r\n\r\nbody\r\n"))
        # Postfix completes locally submitted mail: Message-Id and Date are added
        self.assertIsNotNone(d.header("Message-Id"))
        self.assertIsNotNone(d.header("Date"))

    def test_smtp_source_20_messages_4_sessions(self):
        h = self.h
        r = h.smtp_source(count=20, sessions=4, size=3000, sender="load@acme.example", rcpt="load@example.net",
                          timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        got = h.wait_delivered(20, timeout=60, match=_rcpt_is("load@example.net"))
        self.assertEqual(len(got), 20)
        self.assertEqual(len({d.queue_id for d in got}), 20)
        self.assertTrue(all(d.sender == "load@acme.example" for d in got))
        self.assertEqual(h.postqueue(), [])

    def test_second_instance_does_not_collide(self):
        h = self.h
        with harness.Harness(milter=None) as h2:
            self.assertNotEqual(h2.dir, h.dir)
            self.assertEqual(len({h.smtp_port, h.sink_port, h2.smtp_port, h2.sink_port}), 4)
            r = h2.swaks(sender="x@acme.example", rcpts=["second@example.net"], data=PLAIN_MSG)
            self.assertEqual(r.returncode, 0, r.stdout)
            [d] = h2.wait_delivered(1, timeout=30)
            self.assertEqual(d.rcpts, ["second@example.net"])
            self.assertEqual(d.body_after_received(), PLAIN_MSG)
            self.assertEqual(h.delivered(_rcpt_is("second@example.net")), [])
        assert_closed(h2)
        # the first instance is untouched by the second one's shutdown
        r = h.swaks(sender="x@acme.example", rcpts=["after@example.net"], data=PLAIN_MSG)
        self.assertEqual(r.returncode, 0, r.stdout)
        h.wait_delivered(1, timeout=30, match=_rcpt_is("after@example.net"))


class SaslTest(_HarnessCase):
    harness_kwargs = dict(milter=None, sasl=True)

    def test_auth_good_and_bad_password(self):
        h = self.h
        h.add_sasl_user("alice@acme.example", "secret")
        r = h.swaks(sender="alice@acme.example", rcpts=["dave@example.net"], data=PLAIN_MSG,
                    auth=("alice@acme.example", "secret"))
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("235 2.7.0 Authentication successful", r.stdout)
        [d] = h.wait_delivered(1, timeout=30, match=_rcpt_is("dave@example.net"))
        self.assertIn("with ESMTPA id", d.header("Received"))
        self.assertEqual(d.body_after_received(), PLAIN_MSG)
        h.wait_log(r"sasl_method=PLAIN, sasl_username=alice@acme\.example", source="maillog")

        r = h.swaks(sender="alice@acme.example", rcpts=["dave@example.net"], data=PLAIN_MSG,
                    auth=("alice@acme.example", "wrong"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("535 5.7.8", r.stdout)

    def test_user_added_while_running(self):
        h = self.h
        r = h.swaks(sender="erin@acme.example", rcpts=["x@example.net"], auth=("erin@acme.example", "pw1"))
        self.assertIn("535", r.stdout)
        h.add_sasl_user("erin@acme.example", "pw1")
        r = h.swaks(sender="erin@acme.example", rcpts=["x@example.net"], auth=("erin@acme.example", "pw1"))
        self.assertEqual(r.returncode, 0, r.stdout)
        h.add_sasl_user("erin@acme.example", "pw2")  # password change
        r = h.swaks(sender="erin@acme.example", rcpts=["x@example.net"], auth=("erin@acme.example", "pw1"))
        self.assertIn("535", r.stdout)
        r = h.swaks(sender="erin@acme.example", rcpts=["x@example.net"], auth=("erin@acme.example", "pw2"))
        self.assertEqual(r.returncode, 0, r.stdout)


@unittest.skipUnless(os.access(MILTER_BIN, os.X_OK), f"milter binary {MILTER_BIN} not built (set CLLAVIO_MILTER)")
class MilterPassThroughTest(_HarnessCase):
    # the org file given as a dict: rendered by toml_writer
    harness_kwargs = dict(milter="unix", orgs={"acme": {"id": "acme", "domains": ["acme.example"],
                                                        "sasl_users": ["@acme.example"],
                                                        "networks": ["127.0.0.1/32"]}})

    def test_message_passes_and_is_logged(self):
        h = self.h
        self.assertIsNotNone(h.milter_proc)
        r = h.swaks(sender="alice@acme.example", rcpts=["frank@example.net"], data=PLAIN_MSG)
        self.assertEqual(r.returncode, 0, r.stdout + h.milter_log()[-2000:])
        [d] = h.wait_delivered(1, timeout=30)
        m = h.wait_log(rf"^.*\b{d.queue_id}: .*action=accept.*$")
        self.assertIn("org=acme", m.group(0))
        self.assertIn("msgid=<selftest-1@acme.example>", m.group(0))
        self.assertEqual(d.header("Message-ID"), "<selftest-1@acme.example>")


if __name__ == "__main__":
    unittest.main(verbosity=2)
