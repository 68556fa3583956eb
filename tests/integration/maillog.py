"""Postfix's maillog as data, and its rotation, for tests that compare what a log follower
learnt with what Postfix logged.

Reading: the log is PATH plus its rotated files (PATH.N, PATH.SUFFIX[.gz]), oldest first.
    records(PATH)        every line with a queue id, parsed (Record)
    status_lines(PATH)   per-recipient outcome lines (to=..., status=sent|deferred|bounced|...)
                         and qmgr's 'from=<s>, status=expired, returned to sender' (to=None)
    e.g. status_lines(p, to="x@full.test", status="deferred") -> [Record(qid=..., dsn="4.2.2"...)]

Line shape (postlogd: the day is zero-padded, HOST is myhostname's first label):
    Dec 01 04:13:48 mx postfix/smtp[12922]: A97B1A743E4: to=<b@example.net>, relay=127.0.0.1[127.0.0.1]:21346,
        delay=0.24, delays=0.11/0.12/0.01/0, dsn=2.0.0, status=sent (250 2.0.0 Ok)

Rotating (rotate(postfix, style)); in every style new lines keep arriving in PATH, which
rotate() proves by writing a marker line with postlog(1) and waiting for it there:
    "rename"        PATH.N -> PATH.N+1, then `postfix logrotate`: with the harness's
                    maillog_file_rotate_suffix = 1 and maillog_file_compressor = true it moves
                    PATH to PATH.1 and HUPs master (a reload); the old postlogd may still write
                    a line or two to PATH.1; the new one creates PATH at its first line, mode
                    0600 (mode=... creates/chmods it for a reader that is not root).
    "copytruncate"  PATH.N -> PATH.N+1, copy PATH to PATH.1, truncate PATH in place (postlogd
                    appends with O_APPEND: no hole); lines logged in between are lost.
    "postfix"       plain `postfix logrotate` with main.cf as it is (Postfix's defaults give
                    PATH.%Y%m%d-%H%M%S, then gzip: PATH.20261201-041400.gz).
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import shutil
import time
from dataclasses import dataclass, field

from procs import _tail, _wait_until

# Short ids: hex. Long ids (enable_long_queue_ids): base-52 time, 'z', inode (no vowels).
_QID = r"[0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]{6,}z[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]+"
_LINE = re.compile(r"^(?P<time>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) (?P<host>\S+) "
                   r"(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<qid>" + _QID + r"): (?P<text>.*)$")
_FIELD = re.compile(r"(?:^|, )([a-z_]+)=(<[^>]*>|[^,]*)")
_STATUS = re.compile(r"(?:^|, )status=(?P<status>[A-Za-z]+)(?:,? \(?(?P<reason>.*?)\)?)?$")
_marker_seq = itertools.count(1)


@dataclass
class Record:
    """One maillog line with a queue id. fields: its key=value pairs (to/orig_to without <>)."""
    qid: str
    prog: str                      # as logged: postfix/smtp, postfix-out/smtp...
    text: str                      # what follows "QID: "
    line: str
    file: str = ""
    time: str = ""
    host: str = ""
    pid: int | None = None
    fields: dict = field(default_factory=dict)
    status: str | None = None      # sent, deferred, bounced, expired, ...
    reason: str | None = None      # the text in parentheses (or "returned to sender")

    @property
    def program(self) -> str:
        """Last component of prog: smtp, qmgr, bounce, cleanup..."""
        return self.prog.rsplit("/", 1)[-1]

    @property
    def to(self) -> str | None:
        return self.fields.get("to")

    @property
    def orig_to(self) -> str | None:
        return self.fields.get("orig_to")

    @property
    def dsn(self) -> str | None:
        return self.fields.get("dsn")

    @property
    def relay(self) -> str | None:
        return self.fields.get("relay")

    def __repr__(self) -> str:
        return (f"Record({self.qid} {self.program} to={self.to} status={self.status} dsn={self.dsn} "
                f"reason={self.reason!r})")


def parse_line(line: str, file: str = "") -> Record | None:
    """A Record for a line with a queue id, else None (connect/disconnect, warnings...)."""
    m = _LINE.match(line.rstrip("\r\n"))
    if not m:
        return None
    text = m.group("text")
    r = Record(qid=m.group("qid"), prog=m.group("prog"), text=text, line=line.rstrip("\r\n"), file=file,
               time=m.group("time"), host=m.group("host"), pid=int(m.group("pid")) if m.group("pid") else None)
    st = _STATUS.search(text)
    head = text[:st.start()] if st else text
    for k, v in _FIELD.findall(head):
        r.fields[k] = v[1:-1] if v.startswith("<") and v.endswith(">") else v
    if st:
        r.status, r.reason = st.group("status"), st.group("reason")
        r.fields["status"] = r.status
    return r


def log_files(path: str) -> list[str]:
    """PATH's rotated files (PATH.N, PATH.SUFFIX[.gz]) oldest first (by mtime; for equal
    times the higher N first), then PATH itself if it exists."""
    d, base = os.path.split(path)
    rotated = []
    for name in os.listdir(d or "."):
        if name.startswith(base + "."):
            p = os.path.join(d, name)
            suffix = name[len(base) + 1:]
            try:
                rotated.append((os.stat(p).st_mtime_ns, -int(suffix) if suffix.isdigit() else 0, p))
            except OSError:
                continue
    out = [p for _, _, p in sorted(rotated)]
    return out + ([path] if os.path.exists(path) else [])


def _read(path: str) -> str:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def text(path: str, rotated: bool = True) -> str:
    """The log's text: the rotated files (oldest first) and PATH, concatenated."""
    return "".join(_read(p) for p in (log_files(path) if rotated else [path]))


def records(path: str, pattern=None, rotated: bool = True) -> list[Record]:
    """Every line with a queue id (of PATH and, if rotated, its rotated files), oldest first;
    pattern: a regex the whole line must contain (re.search)."""
    rx = re.compile(pattern) if isinstance(pattern, str) else pattern
    out = []
    for p in (log_files(path) if rotated else [path]):
        for line in _read(p).splitlines():
            if rx is not None and not rx.search(line):
                continue
            r = parse_line(line, p)
            if r is not None:
                out.append(r)
    return out


def status_lines(path: str, pattern=None, *, rotated: bool = True, qid=None, to=None, status=None,
                 dsn=None, program=None) -> list[Record]:
    """Per-recipient outcome lines (a to= and a status=) and qmgr's expiry lines (status
    "expired", to None), oldest first. Filters: pattern (regex on the line), qid, to (address
    without <>), status, dsn (exact, or a prefix ending in "." like "5."), program ("smtp")."""
    out = []
    for r in records(path, pattern, rotated):
        if r.status is None or (r.to is None and r.status != "expired"):
            continue
        if qid is not None and r.qid != qid:
            continue
        if to is not None and r.to != to:
            continue
        if status is not None and r.status != status:
            continue
        if dsn is not None and not (r.dsn == dsn or (dsn.endswith(".") and (r.dsn or "").startswith(dsn))):
            continue
        if program is not None and r.program != program:
            continue
        out.append(r)
    return out


# ---------------------------------------------------------------------------- rotation

def _shift(path: str) -> None:
    """PATH.N -> PATH.N+1 for every numbered rotated file, highest first."""
    d, base = os.path.split(path)
    nums = sorted((int(n[len(base) + 1:]) for n in os.listdir(d)
                   if n.startswith(base + ".") and n[len(base) + 1:].isdigit()), reverse=True)
    for n in nums:
        os.rename(f"{path}.{n}", f"{path}.{n + 1}")


def _wait_new_lines(postfix, timeout: float) -> str:
    """Log a marker through postlogd until one shows up in PATH itself; returns its line."""
    path = postfix.maillog_path
    deadline = time.monotonic() + timeout
    while True:
        marker = f"maillog rotation check {os.getpid()}-{next(_marker_seq)}"
        postfix.postlog(marker)
        for _ in range(10):
            for line in _read(path).splitlines():
                if line.endswith(marker):
                    return line
            time.sleep(0.1)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no new line in {path} {timeout:g}s after rotating it")


def rotate(postfix, style: str = "rename", *, mode: int | None = None, timeout: float = 30) -> str:
    """Rotate the maillog of a running PostfixInstance (styles in the module docstring);
    returns the path that now holds the old lines. mode: chmod PATH afterwards (creating it
    empty first if postlogd has not yet), e.g. 0o644 for a follower that is not root."""
    path = postfix.maillog_path
    if style == "rename":
        _shift(path)
        postfix.command("logrotate")
        old = path + ".1"
        if not os.path.exists(old):
            raise RuntimeError(f"postfix logrotate did not produce {old}: maillog_file_rotate_suffix = "
                               f"{postfix.main_cf_params().get('maillog_file_rotate_suffix')}")
    elif style == "copytruncate":
        _shift(path)
        old = path + ".1"
        shutil.copy2(path, old)
        os.truncate(path, 0)
    elif style == "postfix":
        before = set(log_files(path))
        postfix.command("logrotate")
        new = sorted(set(log_files(path)) - before - {path})
        if len(new) != 1:
            raise RuntimeError(f"postfix logrotate: expected one new file, got {new}")
        old = new[0]
    else:
        raise ValueError(f"style must be 'rename', 'copytruncate' or 'postfix', not {style!r}")
    if mode is not None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    _wait_new_lines(postfix, timeout)
    return old


class MaillogViews:
    """The maillog helpers of harness.Harness (a mixin: needs self.maillog_path, self.postfix)."""

    def maillog_lines(self, pattern=None, **filters) -> list[Record]:
        """Per-recipient outcome lines of PATH and its rotated files, oldest first (and qmgr's
        expiry lines, to=None): status_lines(); filters qid, to, status, dsn, program."""
        return status_lines(self.maillog_path, pattern, **filters)

    def maillog_records(self, pattern=None, rotated=True) -> list[Record]:
        """Every maillog line with a queue id (PATH and its rotated files), parsed."""
        return records(self.maillog_path, pattern, rotated)

    def maillog_text(self, rotated=True) -> str:
        """The rotated files' text (oldest first) and PATH's, concatenated."""
        return text(self.maillog_path, rotated)

    def wait_status(self, count=1, timeout=60, pattern=None, **filters) -> list[Record]:
        """Wait until maillog_lines(pattern, **filters) has >= count lines; returns them.
        e.g. wait_status(3, to="x@full.test", status="deferred")."""
        got = []

        def enough():
            nonlocal got
            got = self.maillog_lines(pattern, **filters)
            return len(got) >= count
        try:
            _wait_until(enough, timeout, f"{count} maillog line(s) {pattern or ''} {filters}")
        except TimeoutError as e:
            raise TimeoutError(f"{e}: {got}\n--- maillog tail ---\n{_tail(self.maillog_path, 3000)}") from None
        return got

    def rotate_log(self, style="rename", mode=None) -> str:
        """Rotate the maillog ("rename": PATH -> PATH.1 by `postfix logrotate`, "copytruncate",
        "postfix": Postfix's own naming; see maillog.py); returns the file with the old lines.
        New lines go to PATH when it returns. Offsets for wait_log(source="maillog") restart at 0."""
        return rotate(self.postfix, style, mode=mode)
