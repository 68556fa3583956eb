#!/usr/bin/env python3
"""A local demo: a private Postfix on 127.0.0.1 with cllavio-milter attached (unix socket,
built-in defaults plus local paths), smtp-sink as the next hop and a private SASL account.
Sends a few messages the way an organization's mail clients and servers would, then shows
what arrived (the HTML newsletter with its links and pixel tracked, the rest byte-identical),
what the milter logged and what it recorded.

    python3 scripts/demo.py          # run, show, stop
    python3 scripts/demo.py --keep   # stay up and print how to send it mail (Ctrl-C stops)

Run through scripts/demo.sh, which installs and builds first. Needs root (Postfix).
"""

import base64
import email
import email.policy
import json
import os
import re
import signal
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
from common import multipart_message, plain_message  # noqa: E402

ORG = """id = "example"
name = "Example Inc."
domains = ["example.com"]
sasl_users = ["@example.com"]     # every login of example.com
networks = ["127.0.0.1/32",       # local applications submitting with sendmail
            "127.0.0.2/32"]       # stands in for the org's Exchange smarthost
[tracking]                        # open and click tracking for this org's HTML mail
opens = true
clicks = true
domain = "t.example.com"
consent = "implied"             # track unless a recipient revoked consent or unsubscribed
[[stream]]                        # the newsletter sender's mail is a campaign
name = "campaigns"
senders = ["news@example.com"]
kind = "campaign"                 # unsubscribed recipients are refused
consent = "implied"
list_unsubscribe = true           # one-click List-Unsubscribe headers
[quota]
messages = [{ per = "1h", max = 1000 }, { per = "1d", max = 10000 }]
max_recipients_per_message = 50
"""
# A fresh signing key per demo run (in production: openssl rand -base64 32, file mode 0600).
SECRETS = {"tracking_key": [{"id": "demo", "secret": base64.b64encode(os.urandom(32)).decode()}]}


def section(title):
    print(f"\n=== {title}")


def main():
    keep = "--keep" in sys.argv[1:]
    with harness.Harness(milter="unix", sasl=True, orgs={"example": ORG}, default_action="accept",
                         milter_user="nobody", secrets=SECRETS) as h:
        h.add_sasl_user("alice@example.com", "demo-password")
        section("running")
        print(f"Postfix smtpd   127.0.0.1:{h.smtp_port}   (config {h.etc_dir}, log {h.maillog_path})")
        print(f"cllavio-milter  {h.milter_addr_libmilter}   (config {h.config_path}, log {h.milter_log_path})")
        print(f"next hop        smtp-sink 127.0.0.1:{h.sink_port}, messages dumped to {h.sink_dir}")
        section("milter configuration (everything else is the built-in default)")
        print(open(h.config_path).read().strip())
        print(f"--- orgs.d/example.toml\n{ORG.strip()}")
        print("--- secrets.toml (mode 0600): one tracking key, id \"demo\"")

        sent = {
            "demo-1@example.com": ("a mail client, SMTP AUTH as alice@example.com",
                                   plain_message("demo-1@example.com", sender="alice@example.com"),
                                   dict(auth=("alice@example.com", "demo-password"))),
            "demo-2@example.com": ("the org's smarthost 127.0.0.2, no AUTH (network + sender domain), HTML",
                                   multipart_message("demo-2@example.com", sender="news@example.com"),
                                   dict(extra_args=["--local-interface", "127.0.0.2"])),
            "demo-3@elsewhere.example": ("a sender of no known organization ([orgs] unknown = accept)",
                                         plain_message("demo-3@elsewhere.example", sender="x@elsewhere.example"),
                                         {}),
        }
        section("sending")
        for msgid, (what, data, kw) in sent.items():
            sender = "x@elsewhere.example" if "elsewhere" in msgid else (
                "alice@example.com" if "auth" in kw else "news@example.com")
            r = h.swaks(sender=sender, rcpts=["someone@example.net"], data=data, **kw)
            print(f"{'ok ' if r.returncode == 0 else 'FAILED'} {msgid}: {what}")
            if r.returncode != 0:
                print(r.stdout[-1500:])
                return 1
        local = plain_message("demo-4@example.com", sender="app@example.com")
        r = h.sendmail(local, "app@example.com", ["someone@example.net"])
        print(f"{'ok ' if r.returncode == 0 else 'FAILED'} demo-4@example.com: local submission with sendmail "
              "(non_smtpd_milters)")

        got = h.wait_delivered(4, timeout=60)
        section("what arrived at the next hop")
        tracked = None
        for d in got:
            msgid = d.header("Message-ID")
            original = sent.get(msgid.strip("<>"), (None, None, None))[1] if msgid else None
            if original == d.body_after_received():
                same = "byte-identical to what was sent (no HTML to track)"
            elif original is None:
                same = "(Postfix added Date/From to the sendmail submission)"
            else:
                same = "campaign, tracked: HTML part rewritten, List-Unsubscribe added, other parts byte-identical"
                tracked = d
            print(f"{d.queue_id}  from=<{d.sender}>  {msgid}  {len(d.raw)} bytes  {same}")

        if tracked is None:
            print("FAILED: the HTML message was not tracked")
            return 1
        section("the tracked HTML part as delivered, its List-Unsubscribe header, and their tokens verified")
        msg = email.message_from_bytes(tracked.body_after_received(), policy=email.policy.default)
        html = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_content()
        print(html.strip())
        lu = tracked.header("List-Unsubscribe")
        print(f"List-Unsubscribe: {lu}\nList-Unsubscribe-Post: {tracked.header('List-Unsubscribe-Post')}")
        urls = re.findall(r'(?:href|src)="(https://t\.example\.com/[oc]/[A-Za-z0-9_-]+)"', html)
        for url in urls + ([lu.strip("<>")] if lu else []):
            info = json.loads(h.ctl("token", "verify", url).stdout)
            print(f"cllavioctl token verify {url[:48]}...\n    -> {json.dumps(info)}")

        section("consent and quota: someone@example.net unsubscribes from the campaigns")
        print(h.ctl("consent", "unsubscribe", "example", "someone@example.net").stdout.rstrip())
        r = h.swaks(sender="news@example.com", rcpts=["someone@example.net"],
                    data=multipart_message("demo-5@example.com", sender="news@example.com"),
                    extra_args=["--local-interface", "127.0.0.2"])
        refusal = [line for line in r.stdout.splitlines() if "unsubscribed from" in line]
        print(f"campaign to them:  {refusal[0].strip() if refusal else 'NOT REFUSED'}")
        r = h.swaks(sender="alice@example.com", rcpts=["someone@example.net"], auth=("alice@example.com", "demo-password"),
                    data=plain_message("demo-6@example.com", sender="alice@example.com"))
        print(f"alice writes to them personally:  {'accepted' if r.returncode == 0 else 'REFUSED'} "
              "(person-to-person mail is never blocked by an unsubscribe)")
        h.wait_delivered(5, timeout=60)
        print("$ cllavioctl quota show example")
        print(h.ctl("quota", "show", "example").stdout.rstrip())
        print("$ cllavioctl audit")
        print(h.ctl("audit").stdout.rstrip())
        if not refusal:
            return 1

        section("milter log")
        for line in h.milter_log().splitlines():
            if ": org=" in line:
                print(line)
        section("cllavioctl messages")
        print(h.ctl("messages").stdout.rstrip())
        section(f"cllavioctl show {tracked.queue_id}  (the tracked message: link table and token ids)")
        print(h.ctl("show", tracked.queue_id).stdout.rstrip())

        if keep:
            section("staying up (Ctrl-C stops everything)")
            print(f"send:  swaks --server 127.0.0.1 --port {h.smtp_port} --from alice@example.com "
                  f"--to someone@example.net --auth PLAIN --auth-user alice@example.com "
                  f"--auth-password demo-password")
            print(f"look:  {os.path.join(ROOT, 'build/cli/cllavioctl')} -c {h.config_path} messages")
            print(f"logs:  tail -f {h.milter_log_path} {h.maillog_path}")
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            stop.wait()
        section("stopping")
    print("stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
