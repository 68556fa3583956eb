"""The mail path end to end: Postfix -> cllavio-milter -> smtp-sink, messages unchanged,
each one recorded in LMDB and logged with its queue id."""

import os
import re
import unittest

from common import (ALL_ORGS, ACME_NET, REPO, HarnessCase, corpus_messages, multipart_message, plain_message)
import harness


class UnixSocketPassThrough(HarnessCase):
    harness_kwargs = dict(milter="unix", sasl=True, orgs=ALL_ORGS, default_action="tempfail")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.h.add_sasl_user("alice@acme.example", "s3cret")

    def test_plain_message_is_byte_identical_and_recorded(self):
        msg = plain_message("plain-1@acme.example")
        self.send(msg, "alice@acme.example", ["bob@example.net", "carol@example.org"],
                  auth=("alice@acme.example", "s3cret"))
        d = self.delivered_one("plain-1@acme.example")
        self.assertIdentical(d, msg)
        rec = self.record(d.queue_id)
        self.assertEqual(rec["org"], "acme")
        self.assertEqual(rec["identified_by"], "sasl")
        self.assertEqual(rec["sasl_login"], "alice@acme.example")
        self.assertEqual(rec["from"], "alice@acme.example")
        self.assertEqual(rec["recipients"], ["bob@example.net", "carol@example.org"])
        self.assertEqual(rec["message_id"], "<plain-1@acme.example>")
        self.assertEqual(rec["action"], "accept")
        self.assertEqual(rec["client_addr"], "127.0.0.1")
        self.assertEqual(rec["size"], len(msg))
        self.assertRegex(rec["id"], r"^[0-9a-f]{16}$")
        # The log line carries the queue id first, like opendkim's.
        self.h.wait_log(rf"info: {d.queue_id}: org=acme by=sasl from=<alice@acme\.example> nrcpt=2 "
                        rf"client=\S+\[127\.0\.0\.1\] sasl=alice@acme\.example size={len(msg)} "
                        rf"msgid=<plain-1@acme\.example> action=accept id={rec['id']}")

    def test_multipart_message_is_byte_identical(self):
        msg = multipart_message("multi-1@acme.example")
        self.send(msg, "alice@acme.example", ["bob@example.net"], auth=("alice@acme.example", "s3cret"))
        d = self.delivered_one("multi-1@acme.example")
        self.assertIdentical(d, msg)
        self.assertEqual(self.record(d.queue_id)["size"], len(msg))

    def test_show_prints_the_record_of_a_queue_id(self):
        msg = plain_message("show-1@acme.example")
        self.send(msg, "x@acme.example", ["bob@example.net"], extra_args=["--local-interface", ACME_NET])
        d = self.delivered_one("show-1@acme.example")
        self.record(d.queue_id)
        out = self.h.ctl("show", d.queue_id).stdout
        self.assertIn(f'"queue_id": "{d.queue_id}"', out)
        self.assertIn('"identified_by": "network"', out)
        missing = self.h.ctl("show", "NOSUCHQID", check=False)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("no message with queue id NOSUCHQID", missing.stderr)

    def test_messages_filters_by_org_and_prints_text(self):
        msg = plain_message("filter-1@initech.example", sender="ceo@initech.example")
        self.send(msg, "ceo@initech.example", ["bob@example.net"])
        d = self.delivered_one("filter-1@initech.example")
        self.record(d.queue_id)
        rows = self.h.ctl_messages("--org", "initech")
        self.assertTrue(rows)
        self.assertTrue(all(r["org"] == "initech" for r in rows))
        text = self.h.ctl("messages", "--org", "initech", "--limit", "1").stdout.splitlines()
        self.assertEqual(len(text), 1)
        self.assertRegex(text[0], rf"^[0-9a-f]{{16}} \S+Z {d.queue_id} +initech +accept +<ceo@initech\.example> "
                                  r"-> bob@example\.net$")

    def test_sendmail_submission_passes_and_is_recorded(self):
        msg = plain_message("local-1@local.example", sender="app@local.example")
        r = self.h.sendmail(msg, "app@local.example", ["bob@example.net"])
        self.assertEqual(r.returncode, 0, r.stderr)
        d = self.delivered_one("local-1@local.example")
        self.assertTrue(d.body().endswith(msg.split(b"\r\n\r\n", 1)[1]))
        rec = self.record(d.queue_id)
        self.assertEqual((rec["org"], rec["identified_by"]), ("local", "network"))
        self.assertEqual(rec["client_addr"], "127.0.0.1")

    def test_privileges_dropped_store_root_owned_socket_for_postfix(self):
        import grp
        import pwd
        nobody = pwd.getpwnam("nobody").pw_uid
        status = open(f"/proc/{self.h.milter_proc.pid}/status").read()
        self.assertRegex(status, rf"(?m)^Uid:\s+{nobody}\s+{nobody}\s+{nobody}\s+{nobody}$")
        # Opened as root before the drop: the unprivileged user cannot even read it by path.
        st = os.stat(self.h.store_dir)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o700))
        for name in ("cllavio.mdb", "cllavio.mdb-lock"):
            st = os.stat(os.path.join(self.h.store_dir, name))
            self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o600), name)
        st = os.stat(self.h.milter_socket)
        self.assertEqual(st.st_mode & 0o777, 0o660)
        self.assertEqual(st.st_gid, grp.getgrnam("postfix").gr_gid)
        st = os.stat(os.path.dirname(self.h.milter_socket))
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o750))


class InetSocketPassThrough(HarnessCase):
    harness_kwargs = dict(milter="inet", orgs=ALL_ORGS)

    def test_plain_and_multipart_are_byte_identical(self):
        for i, msg in enumerate([plain_message("inet-1@acme.example"), multipart_message("inet-2@acme.example")]):
            self.send(msg, "x@acme.example", ["bob@example.net"], extra_args=["--local-interface", ACME_NET])
            d = self.delivered_one(f"inet-{i + 1}@acme.example")
            self.assertIdentical(d, msg)
            self.assertEqual(self.record(d.queue_id)["org"], "acme")


class CorpusPassThrough(unittest.TestCase):
    """Every usable third-party sample arrives exactly as it does through a do-nothing milter.

    The reference is bench/null_milter.c, not Postfix alone: with any milter attached Postfix
    itself truncates a single header longer than about 64 KB (two corpus samples have one)."""

    def test_corpus_is_unchanged_by_the_milter(self):
        samples = corpus_messages(limit=1000)
        if not samples:
            self.skipTest("third-party corpus not present")
        null_milter = os.environ.get("CLLAVIO_NULL_MILTER", os.path.join(REPO, "build", "bench", "null-milter"))
        results = {}
        for kind, command in (("null", [null_milter, "{socket}"]), ("cllavio", None)):
            with harness.Harness(milter="unix", orgs=ALL_ORGS, milter_command=command,
                                 postfix_main={"smtp_line_length_limit": "0"}) as h:
                for i, (name, data) in enumerate(samples):
                    r = h.swaks(sender="x@initech.example", rcpts=[f"c{i}@example.net"], data=data)
                    self.assertEqual(r.returncode, 0, f"{name}: {r.stdout[-500:]}")
                got = h.wait_delivered(len(samples), timeout=120)
                results[kind] = {d.rcpts[0]: d.body_after_received() for d in got}
                if kind == "cllavio":
                    recs = {r["recipients"][0]: r for r in h.ctl_messages("--org", "initech")}
                    self.assertEqual(len(recs), len(samples))
        changed = [name for i, (name, _) in enumerate(samples)
                   if results["null"][f"c{i}@example.net"] != results["cllavio"][f"c{i}@example.net"]]
        self.assertEqual(changed, [], "messages the milter changed")
        same_as_sent = [i for i, (_, data) in enumerate(samples) if results["cllavio"][f"c{i}@example.net"] == data]
        self.assertGreater(len(same_as_sent), len(samples) * 0.9)
        # The recorded size is the message's size whenever Postfix passed it on as sent (the milter
        # cannot see whether a body-less message had the empty separator line: it counts one).
        wrong_size = [samples[i][0] for i in same_as_sent if b"\r\n\r\n" in samples[i][1]
                      and recs[f"c{i}@example.net"]["size"] != len(samples[i][1])]
        self.assertEqual(wrong_size, [])


if __name__ == "__main__":
    unittest.main()
