"""The Redis fixture and the slow proxy themselves (redis_server.py): a private server on a
free port, stop and start on the same port (with and without persistence), AUTH, the unix
socket, noeviction, redis-cli, nothing left behind; the proxy's delay measured, changed at
run time, and what a client sees through it when Redis goes down."""

import os
import socket
import time
import unittest

import common  # noqa: F401  (sys.path)
from procs import _pid_alive, _port_free
from redis_server import RedisError, RedisServer, SlowProxy, resp_command


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    out = fn(*args, **kw)
    return out, time.monotonic() - t0


class RedisFixture(unittest.TestCase):
    def test_private_server_restart_and_cleanup(self):
        r = RedisServer()
        try:
            self.assertTrue(_port_free(r.port))
            r.start()
            self.assertFalse(_port_free(r.port))
            self.assertEqual(r.command("CONFIG", "GET", "maxmemory-policy"), ["maxmemory-policy", "noeviction"])
            self.assertEqual(r.command("CONFIG", "GET", "appendonly"), ["appendonly", "no"])
            self.assertEqual(r.command("CONFIG", "GET", "bind"), ["bind", "127.0.0.1"])
            self.assertEqual(r.command("ZADD", "q:{acme}:log", 1, "a", 2, "b"), 2)
            self.assertEqual(r.cli("ZCARD", "q:{acme}:log"), "2")
            self.assertEqual(r.keys("q:*"), ["q:{acme}:log"])
            with self.assertRaises(RedisError):
                r.command("NOSUCHCOMMAND")
            pid = r.proc.pid
            self.assertEqual(r.stop(), 0)  # SIGTERM: a clean exit
            self.assertFalse(_pid_alive(pid))
            with self.assertRaises(OSError):
                r.command("PING", timeout=1)
            r.start()  # same port, no persistence: empty
            self.assertEqual(r.url, f"redis://127.0.0.1:{r.port}/0")
            self.assertEqual(r.command("DBSIZE"), 0)
            d, pid = r.dir, r.proc.pid
        finally:
            r.close()
        r.close()  # idempotent
        self.assertFalse(_pid_alive(pid))
        self.assertFalse(os.path.exists(d))
        self.assertTrue(_port_free(r.port))

    def test_persistence_auth_and_unix_socket(self):
        with RedisServer(persist=True, fsync="always", password="s3cret-pw", unix_socket=True) as r:
            with self.assertRaises(RedisError) as e:
                resp_command(r.port, "PING")
            self.assertIn("NOAUTH", str(e.exception))
            self.assertEqual(r.command("SET", "k", "v"), "OK")
            self.assertEqual(resp_command(None, "GET", "k", unix_path=r.unix_path, password="s3cret-pw"), "v")
            self.assertEqual(oct(os.stat(r.unix_path).st_mode & 0o777), "0o777")
            self.assertEqual(r.unix_url, f"unix:{r.unix_path}")
            r.kill()  # even a crash keeps what was acknowledged (appendfsync always)
            r.start()
            self.assertEqual(r.command("GET", "k"), "v")
            self.assertEqual(r.cli("GET", "k"), "v")

    def test_noeviction_refuses_writes_when_full(self):
        with RedisServer(maxmemory="2mb") as r:
            big = "x" * 100_000
            with self.assertRaises(RedisError) as e:
                for i in range(100):
                    r.command("SET", f"k{i}", big)
            self.assertIn("OOM", str(e.exception))
            self.assertEqual(r.command("EXISTS", "k0"), 1)  # nothing was evicted


class SlowProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.r = RedisServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.r.close()

    def test_delay_is_applied_per_reply_and_changed_at_run_time(self):
        with SlowProxy(self.r.port, delay_ms=0) as p:
            _, fast = timed(resp_command, p.port, "PING")
            self.assertLess(fast, 0.1)
            p.delay_ms = 300
            reply, slow = timed(resp_command, p.port, "PING")
            self.assertEqual(reply, "PONG")
            self.assertGreaterEqual(slow, 0.3)
            self.assertLess(slow, 1.5)
            with self.assertRaises(socket.timeout):  # a client with a 100 ms timeout gives up
                resp_command(p.port, "PING", timeout=0.1)
            # one connection, three requests in a row: each reply 300 ms late, not cumulative
            s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
            with s:
                t0 = time.monotonic()
                s.sendall(b"*1\r\n$4\r\nPING\r\n" * 3)
                got = b""
                while got.count(b"+PONG\r\n") < 3:
                    got += s.recv(100)
                elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 0.3)
            self.assertLess(elapsed, 0.8)
            p.delay_ms = 0
            _, fast = timed(resp_command, p.port, "PING")
            self.assertLess(fast, 0.1)
            self.assertGreaterEqual(p.accepted, 5)

    def test_redis_down_behind_the_proxy(self):
        r2 = RedisServer().start()
        try:
            with SlowProxy(r2.port) as p:
                s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                self.assertEqual(s.recv(100), b"+PONG\r\n")
                r2.stop()
                self.assertEqual(s.recv(100), b"")  # the proxied connection is closed too
                s.close()
                with self.assertRaises((ConnectionError, OSError)):
                    resp_command(p.port, "PING", timeout=1)
                r2.start()
                self.assertEqual(resp_command(p.port, "PING"), "PONG")
                deadline = time.monotonic() + 5
                while p.connections() and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertEqual(p.connections(), 0)
        finally:
            r2.close()
        with self.assertRaises(ConnectionRefusedError):  # the listener is gone (its port may be in TIME_WAIT)
            socket.create_connection(("127.0.0.1", p.port), timeout=1)


if __name__ == "__main__":
    unittest.main()
