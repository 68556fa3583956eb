"""Open and click tracking through a real Postfix: a tracked newsletter arrives rewritten
(valid MIME, tokens that verify back to the original links, untouched parts identical),
and what must not change (DKIM-signed, opted out, too large, untracked org) arrives
byte-identical. An org with compact (version 2) tokens: 51-character tokens with neither
destination nor recipient, resolved by cllavioctl from the store and by the API from the
message.accepted event; a reply quoting them gets them put back and tracked for itself."""

import base64
import email
import email.policy
import hashlib
import hmac
import json
import re
import unittest

from common import ACME_NET, GLOBEX_NET, ORG_GLOBEX, HarnessCase, plain_message

# The secrets file: one tracking key.
KEY = {"tracking_key": [{"id": "e2e",
                         "secret": "ZTJlLXRlc3Qta2V5LW9ubHktZm9yLXRoZS1pbnRlZ3JhdGlvbi10ZXN0cw=="}]}
ORG_TRACKED = f"""id = "acme"
domains = ["acme.example"]
networks = ["{ACME_NET}/32", "127.0.0.1/32"]
[tracking]
opens = true
clicks = true
domain = "t.acme.example"
consent = "implied"
"""

TEXT = "Hello, this week's news: https://acme.example/news (plain part, not tracked).\r\n"
HTML = ('<html><body><h1>News</h1>\r\n'
        '<a href="https://acme.example/article?id=7&amp;src=mail#top">Read the article</a>\r\n'
        '<a href="mailto:editor@acme.example">Write to us</a> <a href="#x">anchor</a>\r\n'
        '<!--[if mso]><v:roundrect href="https://acme.example/offer">Offer</v:roundrect><![endif]-->\r\n'
        '<p>Caf\u00e9</p></body></html>\r\n')


def newsletter(msgid: str, extra_headers: str = "") -> bytes:
    import quopri
    qp = quopri.encodestring(HTML.replace("\r\n", "\n").encode(), quotetabs=False).decode().replace("\n", "\r\n")
    if not qp.endswith("\r\n"):
        qp += "\r\n"
    return ("From: Acme News <news@acme.example>\r\nTo: <bob@example.net>\r\nSubject: Newsletter\r\n"
            f"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <{msgid}>\r\n{extra_headers}MIME-Version: 1.0\r\n"
            "Content-Type: multipart/alternative; boundary=\"nl\"\r\n\r\n"
            "--nl\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + TEXT +
            "--nl\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
            qp + "--nl--\r\n").encode()


class Tracking(HarnessCase):
    harness_kwargs = dict(milter="unix", orgs={"acme": ORG_TRACKED, "globex": ORG_GLOBEX}, secrets=KEY,
                          settings={"tracking.max_rewrite_bytes": 20000})

    def submit(self, msg: bytes, rcpts=("bob@example.net",), sender="news@acme.example", source=ACME_NET):
        self.send(msg, sender, list(rcpts), extra_args=["--local-interface", source])

    def verify(self, url: str) -> dict:
        r = self.h.ctl("token", "verify", url, check=False)
        self.assertEqual(r.returncode, 0, f"{url}: {r.stderr}")
        return json.loads(r.stdout)

    def test_newsletter_arrives_tracked_and_valid(self):
        sent = newsletter("nl-1@acme.example")
        self.submit(sent)
        d = self.delivered_one("nl-1@acme.example")
        raw = d.body_after_received()
        self.assertNotEqual(raw, sent)
        self.assertTrue(all(len(line) <= 998 for line in raw.split(b"\r\n")))
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = [p.get_content_type() for p in msg.walk()]
        self.assertEqual(parts, ["multipart/alternative", "text/plain", "text/html"])
        text_part = raw[raw.index(b"--nl\r\n"):raw.index(b"--nl\r\nContent-Type: text/html")]
        self.assertIn(TEXT.encode(), text_part)  # the plain part is byte-identical
        html = [p for p in msg.walk() if p.get_content_type() == "text/html"][0].get_content()
        self.assertIn("Caf\u00e9", html)
        clicks = re.findall(r'href="(https://t\.acme\.example/c/[A-Za-z0-9_-]+)"', html)
        self.assertEqual(len(clicks), 2)  # the <a> and the VML button; mailto and #x stay
        destinations = [self.verify(u)["url"] for u in clicks]
        self.assertEqual(destinations, ["https://acme.example/article?id=7&src=mail#top", "https://acme.example/offer"])
        self.assertIn('href="mailto:editor@acme.example"', html)
        pixels = re.findall(r'<img src="(https://t\.acme\.example/o/[A-Za-z0-9_-]+)"', html)
        self.assertEqual(len(pixels), 1)
        opened = self.verify(pixels[0])
        self.assertEqual((opened["kind"], opened["org"], opened["recipient"]), ("open", "acme", "bob@example.net"))
        rec = self.record(d.queue_id)
        self.assertEqual(opened["message"], rec["id"])  # the token names the stored record
        self.assertEqual(rec["tracking"]["status"], "tracked")
        self.assertEqual([l["url"] for l in rec["tracking"]["links"]], destinations)
        self.assertEqual(rec["tracking"]["links_kept"], 2)
        self.h.wait_log(rf"{d.queue_id}: org=acme .* track=tracked links=2 pixels=1")

    def test_several_recipients_share_tokens_without_a_recipient(self):
        self.submit(newsletter("nl-2@acme.example"), rcpts=("a@example.net", "b@example.org"))
        d = self.delivered_one("nl-2@acme.example")  # one transaction to the next hop, two recipients
        self.assertEqual(sorted(d.rcpts), ["a@example.net", "b@example.org"])
        msg = email.message_from_bytes(d.body_after_received(), policy=email.policy.default)
        html = [p for p in msg.walk() if p.get_content_type() == "text/html"][0].get_content()
        url = re.search(r'(https://t\.acme\.example/o/[A-Za-z0-9_-]+)', html).group(1)
        self.assertIsNone(self.verify(url)["recipient"])
        self.assertFalse(self.record(d.queue_id)["tracking"]["per_recipient"])

    def test_signed_message_arrives_byte_identical(self):
        sent = newsletter("nl-3@acme.example", "DKIM-Signature: v=1; a=rsa-sha256; d=acme.example; s=s1;\r\n"
                                              "\tbh=AAAA; b=BBBB\r\n")
        self.submit(sent)
        d = self.delivered_one("nl-3@acme.example")
        self.assertIdentical(d, sent)
        self.assertEqual(self.record(d.queue_id)["tracking"]["skipped"], "dkim_signed")
        self.h.wait_log(rf"{d.queue_id}: .* track=skipped:dkim_signed")

    def test_opt_out_header_is_removed_and_nothing_else_changes(self):
        sent = newsletter("nl-4@acme.example", "X-Cllavio-Track: off\r\n")
        self.submit(sent)
        d = self.delivered_one("nl-4@acme.example")
        self.assertIdentical(d, sent.replace(b"X-Cllavio-Track: off\r\n", b""))
        self.assertEqual(self.record(d.queue_id)["tracking"]["skipped"], "opted_out")

    def test_too_large_passes_unchanged(self):
        big = newsletter("nl-5@acme.example").replace(b"<h1>News</h1>", b"<p>" + b"x" * 30000 + b"</p>")
        big = big.replace(b"x" * 30000, b"".join(b"x" * 70 + b"=\r\n" for _ in range(430)))  # keep QP lines short
        self.submit(big)
        d = self.delivered_one("nl-5@acme.example")
        self.assertIdentical(d, big)
        self.assertEqual(self.record(d.queue_id)["tracking"]["skipped"], "too_large")

    def test_org_without_tracking_is_untouched(self):
        sent = newsletter("nl-6@globex.example").replace(b"news@acme.example", b"news@globex.example")
        self.submit(sent, sender="news@globex.example", source=GLOBEX_NET)
        d = self.delivered_one("nl-6@globex.example")
        self.assertIdentical(d, sent)
        self.assertNotIn("tracking", self.record(d.queue_id))

    def test_local_submission_is_tracked_too(self):
        r = self.h.sendmail(newsletter("nl-7@acme.example"), "app@acme.example", ["bob@example.net"])
        self.assertEqual(r.returncode, 0, r.stderr)
        d = self.delivered_one("nl-7@acme.example")
        self.assertIn(b"https://t.acme.example/c/", d.raw.replace(b"=\r\n", b""))
        self.assertEqual(self.record(d.queue_id)["tracking"]["status"], "tracked")

    def test_plain_mail_of_a_tracking_org_is_untouched(self):
        sent = plain_message("plain-7@acme.example", sender="alice@acme.example")
        self.submit(sent, sender="alice@acme.example")
        d = self.delivered_one("plain-7@acme.example")
        self.assertIdentical(d, sent)
        self.assertEqual(self.record(d.queue_id)["tracking"]["status"], "unchanged")

    def test_stats_count_every_outcome_and_skip_reason(self):
        signed = newsletter("nl-8@acme.example", "DKIM-Signature: v=1; d=acme.example; s=s1; bh=A; b=B\r\n")
        self.submit(signed)
        self.submit(newsletter("nl-9@acme.example"))
        for msgid in ("nl-8@acme.example", "nl-9@acme.example"):
            self.record(self.delivered_one(msgid).queue_id)
        stats = {s["org"]: s for s in map(json.loads, self.h.ctl("tracking", "stats", "--json").stdout.splitlines())}
        acme = stats["acme"]
        # The same counts, independently from the records (other tests of this class may have run first).
        recs = [r for r in self.h.ctl_messages() if r["org"] == "acme" and r["action"] == "accept"]
        status = [r.get("tracking", {}).get("status", "") for r in recs]
        self.assertEqual(acme["messages"], len(recs))
        self.assertEqual((acme["tracked"], acme["unchanged"], acme["skipped"]),
                         (status.count("tracked"), status.count("unchanged"), status.count("skipped")))
        self.assertGreaterEqual(acme["tracked"], 1)
        self.assertEqual(acme["skip_reasons"].get("dkim_signed"),
                         sum(1 for r in recs if r.get("tracking", {}).get("skipped") == "dkim_signed"))
        self.assertGreaterEqual(acme["skip_reasons"]["dkim_signed"], 1)
        self.assertEqual(acme["links_rewritten"], sum(len(r.get("tracking", {}).get("links", [])) for r in recs))
        self.assertEqual(self.h.ctl("tracking", "stats", "--since", "bogus", check=False).returncode, 64)
        text = self.h.ctl("tracking", "stats", "--org", "acme", "--since", "1d").stdout
        self.assertIn("acme: ", text)
        self.assertIn("skipped dkim_signed", text)
        self.assertNotIn("globex", text)


# Compact (version 2) tokens: an org with token_version = 2 needs api.url, so this class runs
# the tests' HTTPS API server (self.h.api) and has its own harness. The key id has 5 characters
# and the org 4, as in docs/tokens.md's size figures: every compact token is 38 bytes, 51 characters.
COMPACT_KEY = {"tracking_key": [{"id": "cmp26",
                                 "secret": "Y29tcGFjdC1lMmUta2V5LW9ubHktZm9yLXRoZS1pbnRlZ3JhdGlvbi10ZXN0cw=="}]}
ORG_COMPACT = ORG_TRACKED + "token_version = 2\n"
COMPACT_DESTINATIONS = [  # as the browser would follow them (entities decoded), in document order
    "https://acme.example/article?id=7&src=mail#top",
    "https://shop.acme.example/collections/spring-2026/linen-shirts-and-summer-dresses"
    "?utm_source=newsletter&utm_medium=email&utm_campaign=spring-2026&utm_content=hero-banner",
    "https://acme.example/events/caf%C3%A9-night",
    "https://acme.example/offer",
]
COMPACT_HTML = ('<html><body><h1>Spring news</h1>\r\n'
                '<p><a href="https://acme.example/article?id=7&amp;src=mail#top">Read the article</a></p>\r\n'
                '<p><a href="https://shop.acme.example/collections/spring-2026/linen-shirts-and-summer-dresses'
                '?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=spring-2026&amp;utm_content=hero-banner">'
                'Shop the collection</a> or <a href=\'https://acme.example/events/caf%C3%A9-night\'>come to the caf\u00e9 '
                'night</a>.</p>\r\n'
                '<a href="mailto:editor@acme.example">Write to us</a> <a href="#x">anchor</a>\r\n'
                '<!--[if mso]><v:roundrect href="https://acme.example/offer">Offer</v:roundrect><![endif]-->\r\n'
                '</body></html>\r\n')
REPLY_OWN_LINK = "https://acme.example/support/ticket/4711"


def html_message(msgid: str, html: str, sender: str, rcpt: str, subject: str) -> bytes:
    """A multipart/alternative message whose HTML part is quoted-printable (short lines whatever html is)."""
    import quopri
    qp = quopri.encodestring(html.replace("\r\n", "\n").encode(), quotetabs=False).decode().replace("\n", "\r\n")
    if not qp.endswith("\r\n"):
        qp += "\r\n"
    return (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n"
            f"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <{msgid}>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/alternative; boundary=\"cp\"\r\n\r\n"
            "--cp\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the HTML part.\r\n"
            "--cp\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
            qp + "--cp--\r\n").encode()


def decode_compact(token: str, keys: dict) -> dict:
    """docs/tokens.md's version 2 layout, checked here independently of the milter: canonical
    base64url, the MAC over everything before it with the key the token names, no trailing bytes."""
    b = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert base64.urlsafe_b64encode(b).rstrip(b"=").decode() == token, "not canonical base64url"
    body, mac = b[:-16], b[-16:]
    kid = body[3:3 + body[2]].decode()
    assert hmac.compare_digest(hmac.new(keys[kid], body, hashlib.sha256).digest()[:16], mac), "bad MAC"
    pos = 3 + body[2]
    org = body[pos + 1:pos + 1 + body[pos]].decode()
    pos += 1 + body[pos]
    message = int.from_bytes(body[pos:pos + 8], "big")
    pos += 8
    link = shift = 0
    while True:  # LEB128
        c = body[pos]
        pos += 1
        link |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            break
    assert pos == len(body), "trailing bytes"
    return {"bytes": b, "version": b[0], "kind": chr(b[1]), "key_id": kid, "org": org,
            "message": f"{message:016x}", "link": link}


class CompactTokens(HarnessCase):
    harness_kwargs = dict(milter="unix", orgs={"acme": ORG_COMPACT}, secrets=COMPACT_KEY, api=True,
                          settings={"api.linger_ms": 50})
    KEYS = {"cmp26": base64.b64decode(COMPACT_KEY["tracking_key"][0]["secret"])}
    _first = None  # the newsletter, sent once for the class (both tests read it)

    def verify(self, url: str) -> dict:
        r = self.h.ctl("token", "verify", url, check=False)
        self.assertEqual(r.returncode, 0, f"{url}: {r.stderr}")
        return json.loads(r.stdout)

    def accepted_event(self, record_id: str) -> dict:
        """The message.accepted event the test API received for our message id."""
        want = f"evt_{record_id}_accepted"
        self.assertTrue(self.h.api.wait_for(lambda: want in self.h.api.distinct_event_ids(), 30),
                        f"{want} never reached the API; got {self.h.api.distinct_event_ids()}")
        [event] = {json.dumps(e, sort_keys=True): e for e in self.h.api.events if e["id"] == want}.values()
        return event

    def html_of(self, d) -> str:
        msg = email.message_from_bytes(d.body_after_received(), policy=email.policy.default)
        [html] = [p.get_content() for p in msg.walk() if p.get_content_type() == "text/html"]
        return html

    def send_and_read(self, msgid: str, html: str, sender: str, rcpt: str, subject: str):
        self.send(html_message(msgid, html, sender, rcpt, subject), sender, [rcpt],
                  extra_args=["--local-interface", ACME_NET])
        d = self.delivered_one(msgid)
        self.assertEqual(d.rcpts, [rcpt])
        return d, self.html_of(d), self.record(d.queue_id)

    def first(self):
        """The newsletter to bob, delivered: (Delivered, its HTML, its store record)."""
        if CompactTokens._first is None:
            CompactTokens._first = self.send_and_read("compact-1@acme.example", COMPACT_HTML, "news@acme.example",
                                                      "bob@example.net", "Spring news")
        return CompactTokens._first

    def test_compact_tokens_carry_no_destination_and_resolve_from_store_and_event(self):
        d, html, rec = self.first()
        self.assertEqual(rec["tracking"]["status"], "tracked")
        self.assertEqual([l["url"] for l in rec["tracking"]["links"]], COMPACT_DESTINATIONS)
        self.h.wait_log(rf"{d.queue_id}: org=acme .* track=tracked links=4 pixels=1")

        # Every http(s) href of the delivered HTML is a tracking URL; no destination is left in it.
        hrefs = re.findall(r'href\s*=\s*(?:"([^"]*)"|\'([^\']*)\'|([^\s>]+))', html)
        hrefs = [a or b or c for a, b, c in hrefs]
        self.assertEqual([h for h in hrefs if not h.startswith("https://t.acme.example/c/")],
                         ["mailto:editor@acme.example", "#x"])
        for dest in COMPACT_DESTINATIONS:
            for form in (dest, dest.replace("&", "&amp;"), dest.split("?")[0]):
                self.assertNotIn(form, html)
        clicks = re.findall(r'(https://t\.acme\.example/c/([A-Za-z0-9_-]+))', html)
        self.assertEqual(len(clicks), len(COMPACT_DESTINATIONS))
        pixels = re.findall(r'(https://t\.acme\.example/o/([A-Za-z0-9_-]+))', html)
        self.assertEqual(len(pixels), 1)

        # The token bytes (docs/tokens.md, version 2): short whatever the destination, no address.
        for i, (_, token) in enumerate(clicks + pixels):
            t = decode_compact(token, self.KEYS)
            is_pixel = i == len(clicks)
            self.assertEqual(len(token), 51, token)  # 38 bytes: 5-char key id, 4-char org, link < 128
            self.assertEqual((t["version"], t["kind"], t["key_id"], t["org"], t["message"], t["link"]),
                             (2, "o" if is_pixel else "c", "cmp26", "acme", rec["id"], 0 if is_pixel else i + 1))
            for leak in (b"bob@example.net", b"example.net", b"acme.example/", b"https://"):
                self.assertNotIn(leak, t["bytes"])

        # cllavioctl token verify: version 2, the destination read from the daemon's store.
        verified = [self.verify(url) for url, _ in clicks]
        self.assertEqual([v["url"] for v in verified], COMPACT_DESTINATIONS)
        for i, v in enumerate(verified):
            self.assertEqual((v["version"], v["kind"], v["org"], v["message"], v["link"], v["key_id"], v["recipient"]),
                             (2, "click", "acme", rec["id"], i + 1, "cmp26", None))
        opened = self.verify(pixels[0][0])
        self.assertEqual((opened["version"], opened["kind"], opened["message"], opened["link"], opened["url"],
                          opened["recipient"]), (2, "open", rec["id"], 0, None, None))

        # The API received what its endpoint needs to resolve them: the link table and the recipient.
        event = self.accepted_event(rec["id"])
        self.assertEqual((event["type"], event["org"], event["message"]["id"], event["message"]["recipients"]),
                         ("message.accepted", "acme", rec["id"], ["bob@example.net"]))
        table = event["tracking"]["tokens"]  # docs/api.md: [{link, url}], the store's link table
        self.assertEqual(table, [{"link": i + 1, "url": u} for i, u in enumerate(COMPACT_DESTINATIONS)])
        self.assertEqual((event["tracking"]["links_rewritten"], event["tracking"]["pixel"]), (4, True))
        by_index = {e["link"]: e["url"] for e in table}
        self.assertEqual([by_index[decode_compact(tok, self.KEYS)["link"]] for _, tok in clicks],
                         COMPACT_DESTINATIONS)

    def test_reply_quoting_compact_links_puts_them_back_and_tracks_them_anew(self):
        _, quoted, first_rec = self.first()
        old_clicks = re.findall(r'https://t\.acme\.example/c/[A-Za-z0-9_-]+', quoted)
        old_pixels = re.findall(r'https://t\.acme\.example/o/[A-Za-z0-9_-]+', quoted)
        self.assertEqual((len(old_clicks), len(old_pixels)), (len(COMPACT_DESTINATIONS), 1))
        reply_html = (f'<html><body><p>Your ticket: <a href="{REPLY_OWN_LINK}">see it here</a>.</p>\r\n'
                      f'<p>On Monday Acme wrote:</p>\r\n<blockquote>\r\n{quoted}</blockquote>\r\n</body></html>\r\n')
        d, html, rec = self.send_and_read("compact-reply-1@acme.example", reply_html, "support@acme.example",
                                          "carol@example.org", "Re: Spring news")
        self.assertNotEqual(rec["id"], first_rec["id"])
        self.assertEqual(rec["tracking"]["status"], "tracked")
        want = [REPLY_OWN_LINK, *COMPACT_DESTINATIONS]
        self.assertEqual([l["url"] for l in rec["tracking"]["links"]], want)

        for old in (*old_clicks, *old_pixels):  # nothing of the first message's tokens is left
            self.assertNotIn(old.rsplit("/", 1)[1], html)
        pixels = re.findall(r'https://t\.acme\.example/o/[A-Za-z0-9_-]+', html)
        self.assertEqual(len(pixels), 1, pixels)  # the quoted pixel removed, the reply's own added
        opened = self.verify(pixels[0])
        self.assertEqual((opened["version"], opened["kind"], opened["message"]), (2, "open", rec["id"]))
        clicks = re.findall(r'https://t\.acme\.example/c/[A-Za-z0-9_-]+', html)
        verified = [self.verify(u) for u in clicks]
        self.assertEqual([v["url"] for v in verified], want)  # put back, then tracked for the reply
        self.assertEqual([(v["version"], v["message"], v["link"]) for v in verified],
                         [(2, rec["id"], i + 1) for i in range(len(want))])
        self.assertEqual([decode_compact(u.rsplit("/", 1)[1], self.KEYS)["message"] for u in clicks],
                         [rec["id"]] * len(want))

        event = self.accepted_event(rec["id"])
        self.assertEqual(event["tracking"]["tokens"], [{"link": i + 1, "url": u} for i, u in enumerate(want)])
        self.assertEqual(event["message"]["recipients"], ["carol@example.org"])
        # The quoted links still resolve for the first message too (its record is untouched).
        self.assertEqual(self.verify(old_clicks[1])["url"], COMPACT_DESTINATIONS[1])
        self.h.wait_log(rf"{d.queue_id}: org=acme .* track=tracked links=5 pixels=1")


if __name__ == "__main__":
    unittest.main()
