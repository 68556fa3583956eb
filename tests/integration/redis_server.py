"""A private redis-server for the integration tests (Debian's redis-server package) and a
SlowProxy that delays Redis's replies, for the shared quotas ([quota] backend = "redis").

    with RedisServer() as r:                     # 127.0.0.1:<free port>, private dir, no persistence
        r.url                                    # "redis://127.0.0.1:PORT/0" ([redis] url)
        r.command("ZCARD", "cllavio:quota:{acme}:log")   # RESP over a socket -> 12
        r.cli("INFO", "memory")                  # the same through redis-cli (text)
        r.stop(); r.start()                      # down and up again on the same port
        with SlowProxy(r.port, delay_ms=200) as p:   # 127.0.0.1:p.port -> Redis, replies 200 ms late
            p.delay_ms = 0                       # transparent from now on

RedisServer files, in its dir (base_dir/redis, or a temp dir of its own removed by close()):
    redis.conf     private config: bind 127.0.0.1, the port, `maxmemory-policy noeviction`,
                   no RDB/AOF unless persist=True (then AOF, fsynced every second and at a
                   SIGTERM shutdown: stop()/start() keeps everything; fsync="always" also
                   survives kill(), at the cost of an fsync per write)
    redis.log      the server's log; redis.sock the unix socket (unix_socket=True, mode 0777)
    data/          its working dir (appendonly files when persist=True)
Every instance is stopped at interpreter exit (atexit), and close() is idempotent.

Python 3.11 standard library only; redis-server and redis-cli from Debian (redis-server,
redis-tools).
"""

from __future__ import annotations

import atexit
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref

from procs import _find_exe, _run, _stop_proc, _tail, _wait_until, free_port

_live: "weakref.WeakSet" = weakref.WeakSet()


@atexit.register
def _close_all():
    for obj in list(_live):
        try:
            obj.close()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass


class RedisError(Exception):
    """An error reply (-ERR ...) from Redis."""


# ---------------------------------------------------------------------- RESP (a minimal client)

def _encode(args) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class _Reader:
    def __init__(self, sock: socket.socket):
        self.sock, self.buf = sock, b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode("utf-8", "surrogateescape")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ConnectionError(f"bad RESP line {line[:80]!r}")


def resp_command(port: int | None, *args, unix_path: str | None = None, password: str | None = None,
                 db: int = 0, timeout: float = 5.0):
    """One command on a fresh connection to 127.0.0.1:port (or unix_path): its reply as
    str / int / None / list; an error reply raises RedisError; OSError when unreachable."""
    if unix_path:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(unix_path)
    else:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    with s:
        s.settimeout(timeout)
        pre = ([("AUTH", password)] if password else []) + ([("SELECT", db)] if db else [])
        r = _Reader(s)
        for p in pre:
            s.sendall(_encode(p))
            rep = r.reply()
            if isinstance(rep, RedisError):
                raise rep
        s.sendall(_encode(args))
        rep = r.reply()
        if isinstance(rep, RedisError):
            raise rep
        return rep


# ---------------------------------------------------------------------- the server

class RedisServer:
    """redis-server on 127.0.0.1 and a free port (checked), with a private config and dir.

    base_dir: where its dir "redis" goes (None: a temp dir of its own, removed by close()).
    port: the port (None: a free one); kept across stop()/start().
    password: requirepass (AUTH needed; command()/cli() send it).
    unix_socket: also listen on dir/redis.sock (unix_url).
    persist: AOF (data survives stop()/start()); default: none.
    fsync: appendfsync with persist: "everysec" (default: at most one fsync a second) or
        "always" (an fsync per write; what was acknowledged survives kill()).
    maxmemory: e.g. "64mb" (default: no limit); the policy is always noeviction.
    extra_conf: more redis.conf lines (text).
    """

    def __init__(self, base_dir: str | None = None, *, port: int | None = None, password: str | None = None,
                 unix_socket: bool = False, persist: bool = False, maxmemory: str | None = None,
                 extra_conf: str = "", name: str = "redis", fsync: str = "everysec"):
        self._own_dir = base_dir is None
        parent = tempfile.mkdtemp(prefix="cllavio-redis-") if base_dir is None else base_dir
        self.dir = os.path.join(parent, name) if base_dir is not None else parent
        os.makedirs(os.path.join(self.dir, "data"), mode=0o755, exist_ok=True)
        os.chmod(self.dir, 0o755)  # the milter (user nobody) reaches the unix socket
        self.port = port or free_port()
        self.password = password
        self.persist = persist
        self.unix_path = os.path.join(self.dir, "redis.sock") if unix_socket else None
        self.conf_path = os.path.join(self.dir, "redis.conf")
        self.log_path = os.path.join(self.dir, "redis.log")
        self.proc: subprocess.Popen | None = None
        self._closed = False
        lines = [
            "# generated by tests/integration/redis_server.py",
            "bind 127.0.0.1",
            f"port {self.port}",
            "protected-mode yes",
            "daemonize no",
            f"dir {os.path.join(self.dir, 'data')}",
            f"logfile {self.log_path}",
            "loglevel notice",
            "databases 16",
            "maxmemory-policy noeviction",
            "tcp-keepalive 60",
            "save \"\"",
            f"appendonly {'yes' if persist else 'no'}",
            f"appendfsync {fsync}",
            "stop-writes-on-bgsave-error no",
        ]
        if maxmemory:
            lines.append(f"maxmemory {maxmemory}")
        if password:
            lines.append(f"requirepass {password}")
        if self.unix_path:
            lines += [f"unixsocket {self.unix_path}", "unixsocketperm 777"]
        if extra_conf:
            lines.append(extra_conf.strip())
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        _live.add(self)

    # ---------------------------------------------------------------- addresses

    def url_for(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def url(self) -> str:
        """[redis] url for TCP: redis://127.0.0.1:PORT/0."""
        return self.url_for(0)

    @property
    def unix_url(self) -> str:
        """[redis] url for the unix socket: unix:/path/redis.sock (unix_socket=True only)."""
        if not self.unix_path:
            raise RuntimeError("RedisServer started without unix_socket=True")
        return f"unix:{self.unix_path}"

    # ---------------------------------------------------------------- process

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 20) -> "RedisServer":
        """Start redis-server (same port and dir as before) and wait until it answers PING."""
        if self._closed:
            raise RuntimeError("RedisServer already closed")
        if self.running():
            raise RuntimeError("redis-server already running")
        start_off = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self.proc = subprocess.Popen([_find_exe("redis-server"), self.conf_path], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True, close_fds=True)
        proc = self.proc

        def ready():
            if proc.poll() is not None:
                err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
                with open(self.log_path, "rb") as f:
                    f.seek(start_off)
                    log = f.read().decode("utf-8", "replace")
                raise RuntimeError(f"redis-server exited with {proc.returncode}: {err}\n{log[-2000:]}")
            try:
                return self.command("PING", timeout=1) == "PONG"
            except (OSError, ConnectionError, RedisError):
                return False
        _wait_until(ready, timeout, f"redis-server on port {self.port}")
        return self

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM and wait (SIGKILL after timeout). Returns its exit code (None: never started).
        Connections are cut; with persist=True the data is on disk."""
        p = self.proc
        if p is None:
            return None
        _stop_proc(p, signal.SIGTERM, timeout)
        if p.stderr:
            p.stderr.close()
        return p.returncode

    def kill(self) -> int | None:
        """SIGKILL (a crash): nothing is saved beyond what persist=True already fsynced
        (everything with fsync="always")."""
        return None if self.proc is None else _kill_now(self)

    def close(self) -> None:
        """Stop it and remove its files (when the dir is its own). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        finally:
            _live.discard(self)
            if self._own_dir and os.environ.get("CLLAVIO_KEEP_TMP") != "1":
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False

    # ---------------------------------------------------------------- commands

    def command(self, *args, db: int = 0, timeout: float = 5.0):
        """One command (RESP over TCP, AUTH with the password): str / int / None / list;
        RedisError on an error reply; OSError when it is down."""
        return resp_command(self.port, *args, password=self.password, db=db, timeout=timeout)

    def cli(self, *args, db: int = 0, timeout: float = 10, check: bool = True) -> str:
        """redis-cli -h 127.0.0.1 -p PORT [-a PASSWORD] [-n DB] ARGS: its stdout (text, stripped).
        check: RuntimeError when redis-cli fails or prints an error reply."""
        argv = [_find_exe("redis-cli"), "-h", "127.0.0.1", "-p", str(self.port), "-n", str(db)]
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password  # not on the command line (no warning either)
        r = _run([*argv, *map(str, args)], timeout=timeout, text=True, env=env)
        out = r.stdout.strip()
        if check and (r.returncode != 0 or out.startswith(("ERR", "(error)", "NOAUTH", "WRONGPASS"))):
            raise RuntimeError(f"redis-cli {' '.join(map(str, args))} failed ({r.returncode}): {out} {r.stderr}")
        return out

    def keys(self, pattern: str = "*", db: int = 0) -> list[str]:
        """Every key matching pattern (SCAN; fine for the few keys of a test)."""
        cursor, out = "0", []
        while True:
            cursor, batch = self.command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000, db=db)
            out += batch
            if cursor == "0":
                return sorted(set(out))

    def flushall(self) -> None:
        self.command("FLUSHALL")

    def log(self) -> str:
        return _tail(self.log_path, 20000)


def _kill_now(server: RedisServer) -> int | None:
    p = server.proc
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)
    if p.stderr:
        p.stderr.close()
    return p.returncode


# ---------------------------------------------------------------------- the slow proxy

class SlowProxy:
    """A TCP proxy 127.0.0.1:port -> 127.0.0.1:upstream_port that holds back every chunk
    coming from the upstream (Redis's replies) for delay_ms before passing it on; requests go
    through at once. delay_ms can be changed at any time (it applies to replies that arrive
    from then on); 0 = transparent. Each connection has its own threads; stop() closes the
    listener and every connection, and joins the threads (bounded)."""

    def __init__(self, upstream_port: int, *, delay_ms: int = 0, port: int | None = None):
        self.upstream_port = upstream_port
        self.delay_ms = delay_ms
        self.port = port or free_port()
        self.accepted = 0              # connections accepted so far
        self._requests: list[bytes] = []  # the start of every chunk sent to the upstream
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        _live.add(self)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "SlowProxy":
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        ls.settimeout(0.2)
        self._listener = ls
        self._spawn(self._accept_loop)
        return self

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True, name=f"slowproxy-{self.port}")
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _track(self, *socks):
        with self._lock:
            self._socks.update(socks)

    def _close(self, *socks):
        for s in socks:
            with self._lock:
                self._socks.discard(s)
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                client.close()  # Redis down: the client sees the connection closed
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            self._track(client, upstream)
            self._spawn(self._pump_requests, client, upstream)
            self._spawn(self._pump_replies, upstream, client)

    def _pump_requests(self, client: socket.socket, upstream: socket.socket):
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                with self._lock:
                    if len(self._requests) < 200_000:
                        self._requests.append(data[:256])
                upstream.sendall(data)
        except OSError:
            pass
        self._close(client, upstream)

    def _pump_replies(self, upstream: socket.socket, client: socket.socket):
        """Reads replies as they come, stamps each with its due time, and a sender thread
        writes it when due: one reply's delay does not add to the next one's."""
        queue: list[tuple[float, bytes]] = []
        cond = threading.Condition()
        done = [False]

        def sender():
            while True:
                with cond:
                    while not queue and not done[0]:
                        cond.wait(0.5)
                    if not queue and done[0]:
                        return
                    due, data = queue[0]
                    wait = due - time.monotonic()
                    if wait > 0:
                        cond.wait(min(wait, 0.5))
                        continue
                    queue.pop(0)
                try:
                    client.sendall(data)
                except OSError:
                    return
        self._spawn(sender)
        try:
            while True:
                r, _, _ = select.select([upstream], [], [], 0.5)
                if self._stopping.is_set():
                    break
                if not r:
                    continue
                data = upstream.recv(65536)
                if not data:
                    break
                with cond:
                    queue.append((time.monotonic() + self.delay_ms / 1000.0, data))
                    cond.notify()
        except (OSError, ValueError):
            pass
        with cond:
            done[0] = True
            cond.notify()
        # let the replies already read go out (when due) before closing, unless stopping
        deadline = time.monotonic() + self.delay_ms / 1000.0 + 1
        while not self._stopping.is_set() and time.monotonic() < deadline:
            with cond:
                if not queue:
                    break
            time.sleep(0.01)
        self._close(client, upstream)

    def requests_matching(self, needle: bytes) -> int:
        """How many request chunks passed on so far contain needle (e.g. b"EVALSHA": script
        calls; a command's name is in its first chunk)."""
        with self._lock:
            return sum(1 for r in self._requests if needle in r)

    def connections(self) -> int:
        """Open proxied connections (client side)."""
        with self._lock:
            return len(self._socks) // 2

    def drop_connections(self) -> None:
        """Close every proxied connection now (the listener stays)."""
        with self._lock:
            socks = list(self._socks)
        self._close(*socks)

    def stop(self, timeout: float = 5) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        self.drop_connections()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    close = stop

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
