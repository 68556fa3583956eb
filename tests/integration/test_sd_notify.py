"""systemd's notify protocol (the unit is Type=notify): the daemon says READY=1 once its socket
listens, RELOADING=1 then READY=1 around a SIGHUP reload (a failed reload too: the previous
configuration keeps serving), and STOPPING=1 when SIGTERM starts the drain. The test plays
systemd's part: a unix datagram socket named by $NOTIFY_SOCKET."""

import os
import socket
import tempfile
import time
import unittest

from common import ORG_ACME, plain_message
import harness


class NotifySocket:
    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)

    def messages(self, timeout):
        """Every datagram that arrives within timeout seconds of quiet after the first."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return out
            out.extend(line for line in data.decode().split("\n") if line)

    def expect(self, wanted, timeout=15):
        """Waits for the notification `wanted`; returns everything received until then."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                break
            seen.extend(line for line in data.decode().split("\n") if line)
            if wanted in seen:
                return seen
        raise AssertionError(f"no {wanted} within {timeout} s; got {seen}")

    def close(self):
        self.sock.close()
        os.unlink(self.path)


class SdNotify(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cllavio-notify-")
        os.chmod(self.tmp, 0o755)  # the milter sends after dropping privileges
        self.notify = NotifySocket(os.path.join(self.tmp, "notify.sock"))
        os.environ["NOTIFY_SOCKET"] = self.notify.path
        try:
            self.h = harness.Harness(milter="unix", orgs={"acme": ORG_ACME})
            self.h.__enter__()
        finally:
            del os.environ["NOTIFY_SOCKET"]  # only the milter inherits it

    def tearDown(self):
        self.h.close()
        self.notify.close()
        os.rmdir(self.tmp)

    def test_ready_reloading_stopping(self):
        # Started by the harness, which waited for the socket to accept connections.
        seen = self.notify.expect("READY=1")
        self.assertEqual(seen, ["READY=1"], "READY=1 is the first notification")
        self.assertIn("ready: listening on", self.h.milter.log())

        # Mail flows: READY was not premature.
        msg = plain_message("notify-1@acme.example")
        self.h.swaks(sender="a@acme.example", rcpts=["b@example.net"], data=msg)
        self.h.wait_delivered(1)

        self.h.milter.reload()
        self.assertEqual(self.notify.expect("READY=1"), ["RELOADING=1", "READY=1"])
        self.h.wait_log(r"reloaded ")

        # A broken configuration: the reload fails, the old one serves, and systemd still hears READY.
        with open(self.h.config_path, "a") as f:
            f.write("\n[nonsense]\nkey = 1\n")
        self.h.milter.reload()
        self.assertEqual(self.notify.expect("READY=1"), ["RELOADING=1", "READY=1"])
        self.h.wait_log(r"reload failed")

        self.assertEqual(self.h.milter.stop(), 0)
        self.assertEqual(self.notify.expect("STOPPING=1"), ["STOPPING=1"])
        self.assertEqual(self.notify.messages(0.5), [], "nothing after STOPPING=1")


if __name__ == "__main__":
    unittest.main()
