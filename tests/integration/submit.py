"""Submitting mail to the private Postfix the way clients do: swaks (SMTP, optional AUTH),
Postfix's sendmail (the non_smtpd_milters path) and smtp-source (load).

Message files handed to swaks / smtp-source go to the harness's tmp/ directory.
"""

from __future__ import annotations

import itertools
import os

from procs import _find_exe, _run
from sink import dot_stuff, to_crlf

CLIENT_HELO = "client.cllavio-it.test"


class Submitter:
    """Clients of the Postfix whose smtpd listens on 127.0.0.1:smtp_port and whose config dir
    is etc_dir; message files are written to tmp_dir (created, mode 0755)."""

    def __init__(self, *, smtp_port: int, etc_dir: str, tmp_dir: str):
        self.smtp_port = smtp_port
        self.etc_dir = etc_dir
        self.tmp_dir = tmp_dir
        self._seq = itertools.count(1)  # next() on it is one C call: thread-safe in CPython
        os.makedirs(tmp_dir, mode=0o755, exist_ok=True)
        os.chmod(tmp_dir, 0o755)

    def tmpfile(self, data: bytes, suffix=".eml") -> str:
        """data in a new file under tmp_dir (readable by everyone); returns its path."""
        path = os.path.join(self.tmp_dir, f"msg{next(self._seq):05d}{suffix}")
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
        return path

    def swaks(self, *, sender, rcpts, data=None, auth=None, timeout=30, extra_args=()):
        """Send one message with swaks to the private smtpd. Never raises on SMTP failure:
        check .returncode (0 = accepted) and .stdout (the SMTP transcript, text).

        data: full message bytes (headers + body), LF or CRLF. Sent exactly: bare LF becomes
        CRLF, dot-stuffing is applied, nothing else is touched (swaks --no-data-fixup, so no
        token expansion, no From_ stripping, no extra blank line). None: swaks' default message.
        auth: (login, password) for AUTH PLAIN, or (login, password, mechanism).
        A timeout of the swaks process gives returncode 124."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        args = [_find_exe("swaks"), "--server", "127.0.0.1", "--port", str(self.smtp_port),
                "--from", sender, "--to", ",".join(rcpts), "--timeout", str(int(timeout)),
                "--helo", CLIENT_HELO]
        if data is not None:
            payload = to_crlf(bytes(data))
            if not payload.endswith(b"\r\n"):
                payload += b"\r\n"
            # swaks sends the payload then CRLF: ending it in '.' makes the terminator line
            args += ["--data", "@" + self.tmpfile(dot_stuff(payload) + b"."), "--no-data-fixup"]
        if auth is not None:
            login, password, *mech = auth
            args += ["--auth", mech[0] if mech else "PLAIN", "--auth-user", login, "--auth-password", password]
        args += list(extra_args)
        return _run(args, timeout=timeout + 15, text=True)

    def sendmail(self, data: bytes, sender, rcpts, timeout=60, extra_args=()):
        """Submit through Postfix's sendmail -C DIR -i -f SENDER -- RCPTS (postdrop -> pickup ->
        cleanup: the non_smtpd_milters path). stdout/stderr are decoded to str.
        Postfix adds Message-Id, Date and From (if missing) to such mail."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        args = [_find_exe("sendmail"), "-C", self.etc_dir, "-i", "-f", sender, *extra_args, "--", *rcpts]
        r = _run(args, input=bytes(data), timeout=timeout)
        r.stdout = r.stdout.decode("utf-8", "replace")
        r.stderr = r.stderr.decode("utf-8", "replace")
        return r

    def smtp_source(self, *, count, sessions, size=None, file=None, sender, rcpt, timeout=300, extra_args=()):
        """Load with Postfix's smtp-source: count messages over `sessions` parallel sessions (each
        message on a new connection unless extra_args has '-d'). size: -l filler bytes;
        file: path or bytes sent with -F (smtp-source adds one empty line at the end)."""
        if size is not None and file is not None:
            raise ValueError("give size or file, not both")
        args = [_find_exe("smtp-source"), "-c", "-s", str(sessions), "-m", str(count),
                "-f", sender, "-t", rcpt, "-M", CLIENT_HELO]
        if size is not None:
            args += ["-l", str(size)]
        if file is not None:
            if isinstance(file, (bytes, bytearray)):
                file = self.tmpfile(bytes(file))
            args += ["-F", str(file)]
        args += list(extra_args)
        args.append(f"127.0.0.1:{self.smtp_port}")
        return _run(args, timeout=timeout, text=True)
