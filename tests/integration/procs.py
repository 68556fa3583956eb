"""Process, port, file and log helpers shared by the integration harness's parts
(Python standard library only)."""

from __future__ import annotations

import errno
import fcntl
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

_SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/lib/postfix/sbin")


def _find_exe(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    for d in _SBIN:
        cand = os.path.join(d, name)
        if os.access(cand, os.X_OK):
            return cand
    raise FileNotFoundError(f"{name} not found (is its Debian package installed?)")


_port_lock = threading.Lock()
_ports_handed_out: set[int] = set()
# Ports this process holds a claim on: an flock'ed file per port, shared by every test
# process on the machine (ctest runs several at once). The kernel drops a claim when its
# process ends, however it ends, so nothing stale is ever left to clean.
_PORT_CLAIMS = "/tmp/cllavio-test-ports"
_port_claims: dict[int, int] = {}


def _port_free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _claim_port(port: int) -> bool:
    """True when no other live process has claimed `port`; the claim is then ours."""
    os.makedirs(_PORT_CLAIMS, mode=0o1777, exist_ok=True)
    fd = os.open(os.path.join(_PORT_CLAIMS, str(port)), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _port_claims[port] = fd
    return True


def _listen_range() -> tuple[int, int]:
    """Ports below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by default):
    a client socket of any process (smtp-source, curl, Prometheus scraping) takes its local port
    from that range and could take ours between the check and the child's bind."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_low, eph_high = (int(x) for x in f.read().split()[:2])
    except (OSError, ValueError):
        eph_low, eph_high = 32768, 60999
    if eph_low - 1 - 20000 >= 4000:
        return 20000, eph_low - 1
    if 65535 - (eph_high + 1) >= 4000:
        return eph_high + 1, 65535
    return 20000, 60000  # no room outside it: the claims still keep test processes apart


def free_port() -> int:
    """A random TCP port below the ephemeral range (20000-32767 by default) that 127.0.0.1
    can bind now, that this process has not handed out before (so several harnesses in one
    process never collide) and that no other test process has claimed (so test processes
    running side by side, each checking a port free before its child binds it, never pick
    the same one)."""
    rng = random.SystemRandom()
    low, high = _listen_range()
    with _port_lock:
        for _ in range(500):
            port = rng.randint(low, high)
            if port in _ports_handed_out:
                continue
            if not _claim_port(port):
                continue
            if _port_free(port):
                _ports_handed_out.add(port)
                return port
            os.close(_port_claims.pop(port))  # bound by something else: not ours to keep
        raise RuntimeError(f"no free TCP port found in {low}-{high}")


def _pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie (PID 1 here does not reap orphans)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    try:
        state = stat[stat.rindex(b")") + 2:][:1]
    except ValueError:
        return False
    return state not in (b"Z", b"X")


def _wait_until(pred, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        val = pred()
        if val:
            return val
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


def _tcp_banner(port: int, timeout: float = 2.0) -> bytes | None:
    """Connect to 127.0.0.1:port, read the SMTP greeting, say QUIT. None if not connectable."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while b"\n" not in data:
                chunk = s.recv(512)
                if not chunk:
                    break
                data += chunk
            try:
                s.sendall(b"QUIT\r\n")
                s.recv(512)
            except OSError:
                pass
            return data
    except OSError:
        return None


def _unix_connectable(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def _read(path: str) -> str:
    """The file's text (UTF-8, bad bytes replaced); "" if it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _wait_log(read, pattern, timeout: float, what: str, start: int = 0) -> re.Match:
    """Poll read() until re.search(pattern, text[start:], re.M) matches; returns the match.
    TimeoutError (with the log's tail) otherwise."""
    rx = re.compile(pattern, re.M) if isinstance(pattern, str) else pattern
    try:
        return _wait_until(lambda: rx.search(read()[start:]), timeout, f"/{rx.pattern}/ in the {what}")
    except TimeoutError as e:
        raise TimeoutError(f"{e}\n--- {what} tail ---\n{read()[start:][-3000:]}") from None


def _tail(path: str, nbytes: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - nbytes))
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"<{path}: {e.strerror}>"


def _run(args, *, timeout=60, check=False, input=None, env=None, text=False) -> subprocess.CompletedProcess:
    """subprocess.run with a timeout that never raises TimeoutExpired: rc 124 instead."""
    try:
        return subprocess.run(args, input=input, capture_output=True, timeout=timeout, check=check, env=env,
                              text=text, errors="replace" if text else None,
                              stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout or (b"" if not text else "")
        err = e.stderr or (b"" if not text else "")
        if text and isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        if text and isinstance(err, bytes):
            err = err.decode("utf-8", "replace")
        msg = f"\n[harness] timed out after {timeout}s\n"
        err = err + (msg if text else msg.encode())
        cp = subprocess.CompletedProcess(args, 124, out, err)
        if check:
            raise subprocess.CalledProcessError(124, args, out, err) from None
        return cp


def _write(path: str, text, mode: int = 0o644):
    data = text.encode() if isinstance(text, str) else text
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _kill(pid: int, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except OSError as e:  # pragma: no cover
        if e.errno != errno.ESRCH:
            raise


def _killpg(pgid: int, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _pgrp_alive(pgid: int) -> bool:
    """Any non-zombie process in process group pgid (our start_new_session children)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rindex(b")") + 2:].split()
        # rest: state ppid pgrp ...
        if len(rest) > 2 and int(rest[2]) == pgid and rest[0] not in (b"Z", b"X"):
            return True
    return False


def _stop_proc(p: subprocess.Popen | None, sig=signal.SIGTERM, timeout: float = 10) -> None:
    """Signal p, wait up to timeout (then SIGKILL), then make sure its process group is gone
    (our children run with start_new_session: dovecot's auth/log processes, for instance)."""
    if p is None:
        return
    if p.poll() is None:
        _kill(p.pid, sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            _killpg(p.pid, signal.SIGKILL)
            _kill(p.pid, signal.SIGKILL)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
    deadline = time.monotonic() + 5
    while _pgrp_alive(p.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pgrp_alive(p.pid):
        _killpg(p.pid, signal.SIGKILL)
