"""Writes systemd journal files without a journald, for tests of the journal line source
(delivery/journal_source.cpp, `make_journal_source(dir, ...)` on a folder).

append_entries() feeds entries in the Journal Export Format to systemd-journal-remote
(Debian package systemd-journal-remote, installed by scripts/deps.sh), which appends them
to DIR/remote.journal, creating it when missing: a second call appends to the same file,
and a follower that has the folder open sees the new entries (sd_journal_wait wakes up).
file_name="remote-2.journal" writes another file in the folder instead, as a rotation
would; the follower picks new files up as well. What journal-remote needs: the folder must
exist, the file name must end in .journal, and each entry must have __REALTIME_TIMESTAMP
(entries without one are dropped as invalid); values with a newline or control bytes go in
the binary field form (NAME, newline, 64-bit little-endian length, bytes, newline).

    append_entries("/tmp/j", [(1796097592123456, "mx1", "postfix/smtp", 123,
                               "4F1B2C3D4E: to=<a@b.example>, ..., status=sent (250 ok)")])

The source then reads "2026-12-01T03:59:52.123456+00:00 mx1 postfix/smtp[123]: 4F1B2C3D4E: ...".
"""

from __future__ import annotations

import itertools
import os
import struct
import subprocess

_JOURNAL_REMOTE = ("/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote")
_BOOT_ID = "0123456789abcdef0123456789abcdef"
_monotonic = itertools.count(1000)


def journal_remote() -> str:
    """The systemd-journal-remote executable; raises when it is not installed."""
    for path in _JOURNAL_REMOTE:
        if os.access(path, os.X_OK):
            return path
    raise RuntimeError("systemd-journal-remote not found: run scripts/deps.sh as root "
                       "(Debian package systemd-journal-remote)")


def _field(name: str, value) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    if any(b < 0x20 for b in data):
        return name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return name.encode() + b"=" + data + b"\n"


def export_format(entries, facility: int = 2) -> bytes:
    """The entries in the Journal Export Format (one block per entry, an empty line after each).

    Each entry is (realtime_us, hostname, identifier, pid, message), optionally followed by a
    sixth item, the syslog facility (default `facility`, 2 = mail). pid None or "" leaves
    SYSLOG_PID out; message may be str or bytes (newlines and binary bytes are kept)."""
    out = bytearray()
    for entry in entries:
        realtime_us, hostname, identifier, pid, message = entry[:5]
        fac = entry[5] if len(entry) > 5 else facility
        out += _field("__REALTIME_TIMESTAMP", int(realtime_us))
        out += _field("__MONOTONIC_TIMESTAMP", next(_monotonic))
        out += _field("_BOOT_ID", _BOOT_ID)
        if hostname:
            out += _field("_HOSTNAME", hostname)
        out += _field("SYSLOG_FACILITY", int(fac))
        if identifier:
            out += _field("SYSLOG_IDENTIFIER", identifier)
        if pid not in (None, ""):
            out += _field("SYSLOG_PID", pid)
        out += _field("MESSAGE", message)
        out += b"\n"
    return bytes(out)


def append_entries(journal_dir: str, entries, file_name: str = "remote.journal") -> str:
    """Appends entries (tuples, see export_format) to journal_dir/file_name with
    systemd-journal-remote; creates journal_dir and the file when missing. Returns the file's
    path; raises RuntimeError when journal-remote fails or writes fewer entries."""
    if not file_name.endswith(".journal"):
        raise ValueError("systemd-journal-remote wants an output file name ending in .journal")
    os.makedirs(journal_dir, exist_ok=True)
    path = os.path.join(journal_dir, file_name)
    entries = list(entries)
    proc = subprocess.run([journal_remote(), f"--output={path}", "-"], input=export_format(entries),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=False)
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0 or f"writing {len(entries)} entries" not in err:
        raise RuntimeError(f"systemd-journal-remote --output={path} failed ({proc.returncode}): {err.strip()}")
    return path
