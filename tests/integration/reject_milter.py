"""The second milter, after cllavio in smtpd_milters: reject_milter.c (built by CMake as
tests/reject-milter), which rejects at end of message, so Postfix refuses a message cllavio
already accepted and logs
    cleanup[PID]: QID: milter-reject: END-OF-MESSAGE from CLIENT: 5.7.1 TEXT; from=<s> to=<r> ...

    h = Harness(milter="unix", reject_milter={"code": 550, "text": "Rejected by policy",
                                              "header": "X-Test-Reject: yes"})
    h.reject   # this part: h.reject.postfix_address, h.reject.log()
A list of such dicts starts several, in that order in smtpd_milters (h.rejects; h.reject is
the first), e.g. one that rejects with 550 and one that tempfails with 451 on another header.

Files, inside the harness's base dir (NAME: reject, reject2, ...):
    NAME/milter.sock               its socket (mode 0666)
    NAME_milter.log                its stderr

Environment: CLLAVIO_REJECT_MILTER (the binary; default REPO/build/tests/reject-milter).
"""

from __future__ import annotations

import os
import signal
import subprocess

from procs import _read, _size, _stop_proc, _unix_connectable, _wait_until

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_REJECT_MILTER = os.path.join(_REPO, "build", "tests", "reject-milter")


def reject_milter_binary() -> str:
    return os.environ.get("CLLAVIO_REJECT_MILTER", DEFAULT_REJECT_MILTER)


class RejectMilter:
    """reject_milter on base_dir/NAME/milter.sock.

    code: SMTP reply code (5xx: reject, 4xx: tempfail); xcode: enhanced status code (default
    5.7.1 / 4.7.1); text: reply text; header: "Name: value": reject only messages carrying
    that header (None: every message)."""

    def __init__(self, base_dir: str, *, name: str = "reject", code=550, xcode: str | None = None, text: str = "Rejected by reject_milter",
                 header: str | None = "X-Test-Reject: yes"):
        self.name = name
        self.dir = os.path.join(base_dir, name)
        self.socket = os.path.join(self.dir, "milter.sock")
        self.log_path = os.path.join(base_dir, f"{name}_milter.log")
        self.postfix_address = f"unix:{self.socket}"
        self.code, self.xcode, self.text, self.header = str(code), xcode, text, header
        self.proc: subprocess.Popen | None = None
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        os.chmod(self.dir, 0o755)

    def argv(self) -> list[str]:
        args = [reject_milter_binary(), "-s", self.postfix_address, "-c", self.code, "-t", self.text]
        if self.xcode:
            args += ["-x", self.xcode]
        if self.header:
            args += ["-H", self.header]
        return args

    def start(self) -> None:
        """Start it and wait for 'ready: listening on' and a connectable socket."""
        argv = self.argv()
        if not os.access(argv[0], os.X_OK):
            raise FileNotFoundError(f"reject milter not built: {argv[0]} (set CLLAVIO_REJECT_MILTER)")
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        start_off = _size(self.log_path)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, close_fds=True)
        proc = self.proc

        def ready():
            if proc.poll() is not None:
                raise RuntimeError(f"reject milter exited with {proc.returncode}: {self.log()[start_off:]}")
            return "ready: listening on" in self.log()[start_off:] and _unix_connectable(self.socket)
        _wait_until(ready, 15, "reject milter 'ready: listening on'")

    def stop(self) -> None:
        """SIGKILL: it keeps no state, and libmilter takes ~5 s to exit after SIGTERM."""
        _stop_proc(self.proc, signal.SIGKILL)

    def log(self) -> str:
        return _read(self.log_path)
