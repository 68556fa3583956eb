"""The smtp-sink next hop of the private Postfix: the process (SmtpSink), its dump files
(parse_sink_dump -> Delivered, what the tests compare) and its counters; CRLF and
dot-stuffing helpers.

Files, inside the harness's base dir (NAME is "sink" for the relayhost sink; other sinks,
see routes.py, have their own names):
    NAME/                          dump files, one per message (owned by postfix)
    NAME.out, NAME.err             smtp-sink -c counters (\\r separated) and diagnostics
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from dataclasses import dataclass, field

from procs import _find_exe, _read, _stop_proc, _tail, _tcp_banner, _wait_until, free_port

HOSTNAME = "mx.cllavio-it.test"  # Postfix myhostname: marks the Received header Postfix adds
SINK_HOSTNAME = "sink.cllavio-it.test"  # smtp-sink's own name (-h)


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




def _reject_args(reject, reply) -> list[str]:
    """smtp-sink options for SmtpSink(reject=..., reply=...)."""
    if reject is None:
        if reply is not None:
            raise ValueError("reply without reject")
        return []
    cmds = reject if isinstance(reject, str) else ",".join(reject)
    if not reply or not re.match(r"^[45]\d\d( |$)", reply):
        raise ValueError(f"reject needs a 4xx or 5xx reply, not {reply!r}")
    return ["-r", cmds, "-b", reply] if reply[0] == "4" else ["-f", cmds, "-B", reply]


class SmtpSink:
    """smtp-sink on a free 127.0.0.1 port, run as postfix, dumping each message to its own
    file under base_dir/NAME (dump=False: it only counts, see counters(); for benchmarks).
    hostname: the sending Postfix's myhostname (to find the Received header it adds).

    name: the sink's files are base_dir/NAME/, base_dir/NAME.out, base_dir/NAME.err.
    reject: SMTP commands this sink refuses ("rcpt", "mail,rcpt", ["rcpt", "data"]...) with
        reply: a 4xx reply makes them soft rejections (smtp-sink -r ... -b REPLY), a 5xx one
        hard rejections (-f ... -B REPLY), e.g. reject="rcpt", reply="452 4.2.2 Mailbox full".
        smtp-sink then stops announcing PIPELINING. A rejection hits every recipient the
        sink sees: route domains to several sinks (routes.py) to mix outcomes.
    args: further smtp-sink options, as given.
    """

    def __init__(self, base_dir: str, *, name: str = "sink", dump: bool = True, hostname: str = HOSTNAME,
                 reject=None, reply: str | None = None, args=()):
        if "/" in name or not name:
            raise ValueError(f"bad sink name {name!r}")
        self.name = name
        self.dir = os.path.join(base_dir, name)
        self.out_path = os.path.join(base_dir, f"{name}.out")
        self.err_path = os.path.join(base_dir, f"{name}.err")
        self.port = free_port()
        self.dump = dump
        self.hostname = hostname
        self.reject_args = _reject_args(reject, reply)
        self.reject, self.reply = reject, reply
        self.extra_args = list(args)
        self.proc: subprocess.Popen | None = None
        pf = pwd.getpwnam("postfix")
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        os.chown(self.dir, pf.pw_uid, pf.pw_gid)
        os.chmod(self.dir, 0o755)

    @property
    def nexthop(self) -> str:
        """The sink as a transport_maps / relayhost next hop: [127.0.0.1]:PORT."""
        return f"[127.0.0.1]:{self.port}"

    def start(self) -> None:
        """Start smtp-sink and return when it answers with 220."""
        args = [_find_exe("smtp-sink"), "-u", "postfix", "-4", "-c", "-h", SINK_HOSTNAME,
                *self.reject_args, *self.extra_args]
        if self.dump:
            args += ["-d", os.path.join(self.dir, "msg.")]
        args += [f"127.0.0.1:{self.port}", "256"]
        with open(self.out_path, "ab") as out, open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         start_new_session=True, close_fds=True)
        proc = self.proc

        def ready():
            if proc.poll() is not None:
                raise RuntimeError(f"smtp-sink exited with {proc.returncode}: {_tail(self.err_path)}")
            b = _tcp_banner(self.port)
            return b is not None and b[:1] in (b"2", b"4", b"5")  # 4xx/5xx: it rejects CONNECT
        _wait_until(ready, 15, f"smtp-sink {self.name} on port {self.port}")

    def stop(self) -> None:
        _stop_proc(self.proc)

    def _open_files(self) -> set[str]:
        """Dump files the sink still holds open (transactions in progress)."""
        out = set()
        p = self.proc
        if p is None or p.poll() is not None:
            return out
        fd_dir = f"/proc/{p.pid}/fd"
        try:
            for fd in os.listdir(fd_dir):
                try:
                    target = os.readlink(os.path.join(fd_dir, fd))
                except OSError:
                    continue
                if target.startswith(self.dir + "/"):
                    out.add(target)
        except OSError:
            pass
        return out

    def delivered(self, match=None) -> list[Delivered]:
        """Every message the sink has completely received, in arrival order (file mtime).
        match: optional predicate(Delivered) -> bool to keep only some."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        open_now = self._open_files()  # listed after the listdir: a closed file is complete
        items = []
        for name in names:
            path = os.path.join(self.dir, name)
            if path in open_now:
                continue
            try:
                st = os.stat(path)
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue  # aborted transaction (RSET) unlinked by the sink
            d = parse_sink_dump(data, path=path, hostname=self.hostname)
            d.mtime_ns = st.st_mtime_ns
            if match is None or match(d):
                items.append(d)
        items.sort(key=lambda d: (d.mtime_ns, d.path))
        return items

    def wait_delivered(self, n: int, timeout: float = 60, match=None) -> list[Delivered]:
        """Wait until >= n complete messages (that satisfy match, if given) arrived; returns
        them all (arrival order). TimeoutError says how many there were."""
        got: list = []

        def enough():
            nonlocal got
            got = self.delivered(match)
            return len(got) >= n
        try:
            _wait_until(enough, timeout, f"{n} delivered message(s)")
        except TimeoutError as e:
            raise TimeoutError(f"{e}: sink has {len(got)}") from None
        return got

    def received(self) -> list[tuple[str | None, str, list]]:
        """What this sink accepted: (queue_id, sender, rcpts) per complete message, in arrival
        order (a sink that rejects RCPT has none; see counters() for its sessions)."""
        return [(d.queue_id, d.sender, d.rcpts) for d in self.delivered()]

    def describe(self) -> str:
        """One line for diagnostics: name, next hop, rejection, counters, messages received."""
        rej = f" rejects {self.reject} with '{self.reply}'" if self.reject else ""
        got = "; ".join(f"{q} <{s}> -> {', '.join(r)}" for q, s, r in self.received()) if self.dump else "-"
        return f"{self.name} {self.nexthop}{rej}: {self.counters()}: {got or 'nothing'}"

    def counters(self) -> dict:
        """Last 'sess=N quit=N mesg=N' line of smtp-sink -c, as ints."""
        parts = [p for p in re.split(r"[\r\n]", _read(self.out_path)) if p.startswith("sess=")]
        if not parts:
            return {"sess": 0, "quit": 0, "mesg": 0}
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", parts[-1])}
