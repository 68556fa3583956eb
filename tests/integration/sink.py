"""smtp-sink dump files and what the tests compare: Delivered messages, CRLF and dot-stuffing helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HOSTNAME = "mx.cllavio-it.test"  # Postfix myhostname: marks the Received header Postfix adds


def to_crlf(data: bytes) -> bytes:
    """Bare LF -> CRLF (CRLF and bare CR left alone): what Postfix relays for LF input."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def dot_stuff(data: bytes) -> bytes:
    """SMTP transparency (RFC 5321 4.5.2) for CRLF data."""
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..")



_ADDR_RE = re.compile(rb"^\s*<([^>]*)>")


def _addr_of(args: bytes) -> str:
    m = _ADDR_RE.match(args)
    if m:
        return m.group(1).decode("utf-8", "surrogateescape")
    return args.split(None, 1)[0].decode("utf-8", "surrogateescape") if args.strip() else ""


def _split_header_block(msg: bytes) -> tuple[list[bytes], bytes]:
    """CRLF message -> (list of header fields incl. continuation lines and their CRLFs, rest)."""
    fields: list[bytes] = []
    pos = 0
    while pos < len(msg):
        end = msg.find(b"\r\n", pos)
        line_end = len(msg) if end < 0 else end + 2
        line = msg[pos:line_end]
        if line in (b"\r\n", b""):
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        elif b":" in line.split(b"\r\n")[0]:
            fields.append(line)
        else:
            break  # not a header line: body starts (no separator)
        pos = line_end
    return fields, msg[pos:]


def _unfold(field_bytes: bytes) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", field_bytes.decode("utf-8", "surrogateescape")).rstrip("\r\n")


@dataclass
class Delivered:
    """One message as dumped by smtp-sink.

    raw       the message (headers+body) as the sink received it, CRLF line ends restored
              (smtp-sink drops every CR, so a bare CR in the original is lost), dot-unstuffed,
              without the sink's own X-*/Received lines and without the trailing terminator line.
    sender    MAIL FROM address ("" for bounces); rcpts: RCPT TO addresses in order.
    queue_id  Postfix queue id from the Received header the harness's Postfix added (or None).
    """
    sender: str
    rcpts: list
    raw: bytes
    queue_id: str | None = None
    path: str | None = None
    helo: str | None = None
    client_addr: str | None = None
    mail_args: str = ""
    rcpt_args: list = field(default_factory=list)
    dump: bytes = b""          # the dump file exactly as written by smtp-sink
    mtime_ns: int = 0
    hostname: str = HOSTNAME   # Postfix myhostname used to recognise its Received header

    def headers(self) -> list[tuple[str, str]]:
        """[(name, unfolded value)] of the message header, in order."""
        fields, _ = _split_header_block(self.raw)
        out = []
        for f in fields:
            s = _unfold(f)
            name, _, value = s.partition(":")
            out.append((name, value.strip()))
        return out

    def header(self, name: str) -> str | None:
        """First header with that name (case-insensitive), unfolded, or None."""
        for n, v in self.headers():
            if n.lower() == name.lower():
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        return [v for n, v in self.headers() if n.lower() == name.lower()]

    def body(self) -> bytes:
        """Bytes after the header/body separator line."""
        _, rest = _split_header_block(self.raw)
        return rest[2:] if rest.startswith(b"\r\n") else rest

    def _postfix_received_index(self, fields):
        pat = re.compile(r"^Received:.*\bby " + re.escape(self.hostname) + r" \(Postfix", re.I | re.S)
        for i, f in enumerate(fields):
            if pat.match(_unfold(f)):
                return i
        return None

    def body_after_received(self) -> bytes:
        """raw with the Received header added by the harness's Postfix removed (the first
        header 'Received: ... by mx.cllavio-it.test (Postfix...'); unchanged if there is none."""
        fields, rest = _split_header_block(self.raw)
        i = self._postfix_received_index(fields)
        if i is None:
            return self.raw
        del fields[i]
        return b"".join(fields) + rest


def parse_sink_dump(dump: bytes, *, path: str | None = None, hostname: str = HOSTNAME) -> Delivered:
    """Parse one smtp-sink -d dump file.

    Format (smtp-sink(1) DUMP FILE FORMAT, checked against Postfix 3.7's smtp-sink):
        X-Client-Addr: 127.0.0.1
        X-Client-Proto: ESMTP
        X-Helo-Args: mx.cllavio-it.test        (only if HELO/EHLO was sent)
        X-Mail-Args: <a@x> SIZE=123 BODY=8BITMIME   (MAIL FROM args, verbatim)
        X-Rcpt-Args: <b@y> ...                 (one per RCPT, in order)
        Received: from HELO ([ADDR])
        \\tby HOST (smtp-sink) with ESMTP id 0a1b2c3d;
        \\tDATE
        <message as received: all CR bytes dropped, dot-unstuffed, lines end in LF>
        <one empty line: the LF of the terminating '.' line>
    """
    lines = dump.split(b"\n")
    meta: dict[str, list[bytes]] = {}
    i = 0
    while i < len(lines) and not lines[i].startswith(b"Received: "):
        name, _, value = lines[i].partition(b": ")
        meta.setdefault(name.decode("ascii", "replace"), []).append(value)
        i += 1
    if i >= len(lines):
        raise ValueError(f"not an smtp-sink dump (no Received line): {path}")
    i += 1
    while i < len(lines) and lines[i].startswith(b"\t"):
        i += 1  # continuation lines of the sink's own Received header (by ..., date)
    body = b"\n".join(lines[i:])
    if body.endswith(b"\n"):
        body = body[:-1]  # the terminator ".\r\n" leaves one LF
    raw = body.replace(b"\n", b"\r\n")

    mail_args = meta.get("X-Mail-Args", [b""])[0]
    rcpt_args = meta.get("X-Rcpt-Args", [])
    d = Delivered(
        sender=_addr_of(mail_args),
        rcpts=[_addr_of(a) for a in rcpt_args],
        raw=raw,
        path=path,
        helo=meta["X-Helo-Args"][0].decode("utf-8", "replace") if "X-Helo-Args" in meta else None,
        client_addr=meta["X-Client-Addr"][0].decode("utf-8", "replace") if "X-Client-Addr" in meta else None,
        mail_args=mail_args.decode("utf-8", "surrogateescape"),
        rcpt_args=[a.decode("utf-8", "surrogateescape") for a in rcpt_args],
        dump=dump,
        hostname=hostname,
    )
    fields, _ = _split_header_block(raw)
    idx = d._postfix_received_index(fields)
    if idx is not None:
        m = re.search(r"\bid ([0-9A-Za-z]+)\b", _unfold(fields[idx]))
        if m:
            d.queue_id = m.group(1)
    return d


