"""Organization identification through a real Postfix: SASL login, client network plus
sender domain, sender domain alone, and mail of no known organization (accept / reject)."""

import unittest

from common import ACME_NET, ALL_ORGS, GLOBEX_NET, HarnessCase, plain_message


class Identification(HarnessCase):
    harness_kwargs = dict(milter="unix", sasl=True, orgs=ALL_ORGS, unknown="accept")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.h.add_sasl_user("alice@acme.example", "pw-alice")
        cls.h.add_sasl_user("ops@partner.example", "pw-ops")

    def org_of(self, msgid, sender, auth=None, source=None):
        extra = ["--local-interface", source] if source else []
        self.send(plain_message(msgid, sender=sender), sender, ["rcpt@example.net"], auth=auth, extra_args=extra)
        d = self.delivered_one(msgid)
        rec = self.record(d.queue_id)
        return rec["org"] or "unknown", rec["identified_by"]

    def test_sasl_login_domain_wins_over_the_sender(self):
        # alice may send with any envelope sender: the login decides.
        self.assertEqual(self.org_of("s1@x", "bob@globex.example", auth=("alice@acme.example", "pw-alice")),
                         ("acme", "sasl"))

    def test_exact_sasl_login(self):
        self.assertEqual(self.org_of("s2@x", "ops@partner.example", auth=("ops@partner.example", "pw-ops")),
                         ("acme", "sasl"))

    def test_client_network_and_sender_domain(self):
        self.assertEqual(self.org_of("n1@x", "news@acme.example", source=ACME_NET), ("acme", "network"))
        self.assertEqual(self.org_of("n2@x", "crm@globex.example", source=GLOBEX_NET), ("globex", "network"))

    def test_network_of_another_org_does_not_identify(self):
        self.assertEqual(self.org_of("n3@x", "news@acme.example", source=GLOBEX_NET), ("unknown", "none"))

    def test_sender_domain_alone_only_for_trusting_orgs(self):
        self.assertEqual(self.org_of("d1@x", "ceo@initech.example"), ("initech", "sender_domain"))
        # acme does not trust its sender domain alone: from 127.0.0.1 it is not identified.
        self.assertEqual(self.org_of("d2@x", "ceo@acme.example"), ("unknown", "none"))

    def test_unknown_org_is_accepted_untouched_and_logged(self):
        msg = plain_message("u1@x", sender="someone@elsewhere.example")
        self.send(msg, "someone@elsewhere.example", ["rcpt@example.net"])
        d = self.delivered_one("u1@x")
        self.assertIdentical(d, msg)
        self.assertEqual(self.record(d.queue_id)["org"], "")
        self.h.wait_log(rf"{d.queue_id}: org=unknown by=none from=<someone@elsewhere\.example> .* action=accept")
        self.assertIn(d.queue_id, [r["queue_id"] for r in self.h.ctl_messages("--org", "unknown")])

    def test_sendmail_submission_identified_by_local_network(self):
        r = self.h.sendmail(plain_message("l1@x", sender="cron@local.example"), "cron@local.example",
                            ["rcpt@example.net"])
        self.assertEqual(r.returncode, 0, r.stderr)
        d = self.delivered_one("l1@x")
        self.assertEqual(self.record(d.queue_id)["org"], "local")


class UnknownRejected(HarnessCase):
    harness_kwargs = dict(milter="unix", orgs=ALL_ORGS, unknown="reject")

    def test_smtp_client_gets_550_at_mail_from_and_nothing_is_delivered(self):
        r = self.h.swaks(sender="eve@elsewhere.example", rcpts=["victim@example.net"],
                         data=plain_message("r1@x", sender="eve@elsewhere.example"))
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"<\*\* +550 5\.7\.1 Sender <eve@elsewhere\.example> is not authorized to send "
                                   r"through this server")
        self.assertRegex(r.stdout, r"(?s)MAIL FROM:<eve@elsewhere\.example>.*550 5\.7\.1")
        self.h.wait_log(r"NOQUEUE: org=unknown by=none from=<eve@elsewhere\.example> nrcpt=0 .*action=reject "
                        r"reason=unknown_org")
        rejected = [x for x in self.h.ctl_messages("--org", "unknown") if x["from"] == "eve@elsewhere.example"]
        self.assertEqual([(x["action"], x["reason"], x["queue_id"]) for x in rejected],
                         [("reject", "unknown_org", "")])
        # Known senders still get through on the same server.
        self.send(plain_message("r2@x", sender="ceo@initech.example"), "ceo@initech.example", ["x@example.net"])
        self.delivered_one("r2@x")
        self.assertEqual(self.h.delivered(match=lambda d: d.header("Message-ID") == "<r1@x>"), [])

    def test_sendmail_from_unknown_sender_is_bounced_not_delivered(self):
        r = self.h.sendmail(plain_message("r3@x", sender="nobody@elsewhere.example"), "nobody@elsewhere.example",
                            ["victim@example.net"])
        self.assertEqual(r.returncode, 0, r.stderr)  # postdrop accepted it; cleanup's milter refuses it
        self.h.wait_log(r"milter-reject: END-OF-MESSAGE|milter-reject: MAIL", source="maillog")
        bounce = self.h.wait_delivered(1, match=lambda d: d.sender == "" and d.rcpts == ["nobody@elsewhere.example"])
        self.assertIn(b"5.7.1", bounce[0].raw)
        self.assertEqual(self.h.delivered(match=lambda d: d.rcpts == ["victim@example.net"]), [])


if __name__ == "__main__":
    unittest.main()
