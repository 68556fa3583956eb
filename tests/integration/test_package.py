"""The Debian package, installed for real on this machine.

scripts/package.sh --prebuilt packages the ctest build tree (lintian must report no error),
`dpkg -i` installs it, and the checks are those an admin would make: files, conffiles, the
user and folders the postinst made (sysusers, tmpfiles, the socket folder), the unit
(`systemd-analyze verify`), Postfix's configuration untouched. Then the installed daemon runs
the way its unit starts it - every ExecStartPre and the ExecStart of the installed unit file,
as its User=, with its UMask=, without NOTIFY_SOCKET - behind a private Postfix attached to
/var/spool/postfix/cllavio/milter.sock: one message goes through, reaches the sink, is logged
to syslog (the test holds /dev/log) and recorded in the store (`cllavioctl messages`);
ExecReload reloads it, SIGTERM stops it. `dpkg -r` keeps configuration and data, `dpkg --purge`
leaves nothing of the package (the system user cllavio stays, as Debian packages leave theirs).

Only one run at a time per machine (the package is installed system-wide): a lock file
serializes concurrent runs. A package left installed by an earlier run is purged first, and
the package is purged at the end whatever happened.
"""

from __future__ import annotations

import fcntl
import grp
import hashlib
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from common import plain_message
from procs import _unix_connectable, _wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKG = "cllavio-milter"
UNIT = "/lib/systemd/system/cllavio-milter.service"
CONFIG = "/etc/cllavio/cllavio.toml"
SOCKET = "/var/spool/postfix/cllavio/milter.sock"
STATE_DIRS = ("/etc/cllavio", "/var/lib/cllavio", "/var/spool/postfix/cllavio")
LOCK = "/run/lock/cllavio-test-package.lock"
# Written while this test has the package installed (its daemon's pid inside once started):
# only a package this test installed is purged as a leftover, never an admin's installation.
MARKER = "/var/lib/cllavio-test-package.installed"
# The man pages come with man/ (installed by CMake); before that branch they are not expected.
MAN_PAGES = ("/usr/share/man/man8/cllavio-milter.8.gz", "/usr/share/man/man8/cllavioctl.8.gz",
             "/usr/share/man/man5/cllavio.toml.5.gz")


def run(args, check=True, timeout=120, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def installed() -> bool:
    """True when dpkg knows the package in any state but not-installed (config-files too)."""
    r = run(["dpkg-query", "-W", "-f=${Status}", PKG], check=False)
    return r.returncode == 0 and not r.stdout.endswith("not-installed")


def digest(path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None


class SyslogCapture:
    """/dev/log for the daemon: a datagram socket that keeps every line sent to it.

    When /dev/log does not exist (no journald or syslog daemon, as in CI), it is bound at
    /dev/log itself and removed on close. When it exists, it is bound in a temp dir and
    wrap() runs the daemon in a private mount namespace where it is bind-mounted over
    /dev/log, so the machine's syslog is left alone."""

    def __init__(self, tmp_dir):
        if os.path.lexists("/dev/log") and stat.S_ISSOCK(os.lstat("/dev/log").st_mode) and not self.listening():
            os.unlink("/dev/log")  # nobody reads it: left by a run of this test that was killed
        self.own_dev_log = not os.path.lexists("/dev/log")
        self.path = "/dev/log" if self.own_dev_log else os.path.join(tmp_dir, "dev-log")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.lines: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @staticmethod
    def listening() -> bool:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.connect("/dev/log")
            return True
        except OSError:
            return False
        finally:
            s.close()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.lines.append(data.decode("utf-8", "replace"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def wait(self, pattern, timeout=20) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text(), re.M)
            if m:
                return m
            time.sleep(0.1)
        raise AssertionError(f"no syslog line matching {pattern!r} within {timeout} s; got:\n{self.text()}")

    def wrap(self, argv, user, group, umask) -> tuple[list[str], dict]:
        """argv and Popen keywords that run argv as user:group with umask, logging to us."""
        if self.own_dev_log:
            return argv, {"user": user, "group": group, "extra_groups": [], "umask": umask}
        inner = (f"mount --bind {shlex.quote(self.path)} /dev/log && umask {umask:o} && exec setpriv "
                 f"--reuid={user} --regid={group} --clear-groups -- " + " ".join(map(shlex.quote, argv)))
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner], {}

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class Unit:
    """The [Service] settings of the installed unit file that the test needs."""

    def __init__(self, path):
        self.pre: list[str] = []
        self.start = self.reload = None
        self.user = self.group = None
        self.umask = 0o022
        with open(path) as f:
            section = None
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    section = line
                    continue
                if section != "[Service]" or "=" not in line or line.startswith("#"):
                    continue
                key, value = line.split("=", 1)
                if key == "ExecStartPre":
                    self.pre.append(value)
                elif key == "ExecStart":
                    self.start = value
                elif key == "ExecReload":
                    self.reload = value
                elif key == "User":
                    self.user = value
                elif key == "Group":
                    self.group = value
                elif key == "UMask":
                    self.umask = int(value, 8)


class PackageTest(unittest.TestCase):
    def setUp(self):
        self.lock = open(LOCK, "w")
        fcntl.flock(self.lock, fcntl.LOCK_EX)  # another run of this test on the machine
        self.addCleanup(self.lock.close)
        if installed():
            if not os.path.exists(MARKER):
                self.fail(f"{PKG} is installed on this machine, not by this test: not replacing it")
            self.clean_leftover()  # an earlier run that could not clean up (killed, power loss)
        self.addCleanup(self.purge_quietly)
        self.daemon: subprocess.Popen | None = None
        self.addCleanup(self.stop_daemon)
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}  # what systemd gives

    def clean_leftover(self):
        with open(MARKER) as f:
            pid = f.read().strip()
        try:
            exe = os.readlink(f"/proc/{pid}/exe") if pid else ""
        except OSError:
            exe = ""
        if exe.startswith("/usr/sbin/cllavio-milter"):  # that run's daemon (" (deleted)" once purged)
            os.kill(int(pid), signal.SIGKILL)
            _wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 10, "the leftover daemon to exit")
        run(["dpkg", "--purge", PKG])
        with open("/proc/self/mounts") as f:  # send_one's bind mounts (read-only) of that run
            for line in f:
                point = line.split()[1]
                if re.fullmatch(r"/tmp/cllavio-it-[^/]+/spool/cllavio", point):
                    run(["umount", "--lazy", point], check=False)
        os.unlink(MARKER)

    def purge_quietly(self):
        self.stop_daemon()
        if installed():
            run(["dpkg", "--purge", PKG], check=False)
        if not installed() and os.path.exists(MARKER):
            os.unlink(MARKER)

    def mark(self, text=""):
        with open(MARKER, "w") as f:
            f.write(text)

    def stop_daemon(self):
        p, self.daemon = self.daemon, None
        if p is not None and p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)

    # ------------------------------------------------------------------ steps

    def build_package(self, out_dir) -> str:
        milter = os.environ.get("CLLAVIO_MILTER", harness.DEFAULT_MILTER)
        build_dir = os.path.dirname(os.path.dirname(os.path.abspath(milter)))
        r = run([os.path.join(REPO, "scripts", "package.sh"), "--prebuilt", build_dir, "--out", out_dir], timeout=300)
        deb = r.stdout.strip().splitlines()[-1]
        self.assertRegex(os.path.basename(deb), r"^cllavio-milter_\d+\.\d+\.\d+_[a-z0-9]+\.deb$")
        self.assertTrue(os.path.isfile(deb), deb)
        return deb

    def check_files(self, dpkg_out: str):
        for exe in ("/usr/sbin/cllavio-milter", "/usr/sbin/cllavioctl"):
            st = os.stat(exe)
            self.assertEqual((st.st_mode & 0o7777, st.st_uid), (0o755, 0), exe)
        version = run(["/usr/sbin/cllavio-milter", "-V"]).stdout
        with open(os.path.join(REPO, "CMakeLists.txt")) as f:
            project = re.search(r"project\(cllavio-milter VERSION ([0-9.]+)", f.read())
        self.assertEqual(version.strip(), f"cllavio-milter {project[1]}")
        self.assertTrue(os.path.isfile(UNIT))
        conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", PKG]).stdout
        for f in (CONFIG, "/etc/cllavio/orgs.d/example.toml.sample"):
            self.assertIn(f" {f} ", conffiles)
        self.assertEqual([n for n in os.listdir("/etc/cllavio/orgs.d") if n.endswith(".toml")], [],
                         "no organization file is loaded out of the box")
        listed = set(run(["dpkg", "-L", PKG]).stdout.split())
        if os.path.exists(os.path.join(REPO, "man", "cllavio-milter.8")):
            for page in MAN_PAGES:
                self.assertIn(page, listed)
        self.assertIn("/usr/lib/sysusers.d/cllavio-milter.conf", listed)
        self.assertIn("/usr/lib/tmpfiles.d/cllavio-milter.conf", listed)

        # What the postinst made: the user (systemd-sysusers), the store (systemd-tmpfiles)
        # and the socket folder, setgid postfix so that the socket is Postfix's group.
        pw = pwd.getpwnam("cllavio")
        self.assertLess(pw.pw_uid, 1000)
        self.assertEqual((pw.pw_dir, pw.pw_shell), ("/var/lib/cllavio", "/usr/sbin/nologin"))
        self.assertEqual(grp.getgrgid(pw.pw_gid).gr_name, "cllavio")
        for path, mode, owner, group in (("/var/lib/cllavio", 0o750, "cllavio", "cllavio"),
                                         ("/var/spool/postfix/cllavio", 0o2750, "cllavio", "postfix")):
            st = os.stat(path)
            self.assertTrue(stat.S_ISDIR(st.st_mode), path)
            self.assertEqual((oct(st.st_mode & 0o7777), pwd.getpwuid(st.st_uid).pw_name,
                              grp.getgrgid(st.st_gid).gr_name), (oct(mode), owner, group), path)

        # postinst: says how to attach, changes nothing of Postfix.
        self.assertIn("postconf -e 'smtpd_milters = unix:cllavio/milter.sock'", dpkg_out)
        self.assertIn("postconf -e 'non_smtpd_milters = unix:cllavio/milter.sock'", dpkg_out)
        self.assertIn("cllavioctl doctor", dpkg_out)

    def check_unit(self):
        args = ["systemd-analyze", "verify"]
        if not all(os.path.exists(p) for p in MAN_PAGES):
            args.append("--man=no")  # Documentation=man:... pages come with the man page branch
        r = run([*args, UNIT], check=False)
        # Offline (no systemd running) verify still loads and checks the unit and its
        # commands; it reports nothing when the unit is clean.
        self.assertEqual((r.returncode, r.stdout.strip(), r.stderr.strip()), (0, "", ""))
        unit = Unit(UNIT)
        self.assertEqual((unit.user, unit.group, unit.umask), ("cllavio", "cllavio", 0o027))
        self.assertIn(f"/usr/sbin/cllavio-milter -n -c {CONFIG}", unit.pre)
        self.assertEqual(unit.start, f"/usr/sbin/cllavio-milter -c {CONFIG}")
        return unit

    def start_as_systemd(self, unit: Unit, syslog: SyslogCapture, log_path: str):
        for cmd in unit.pre:
            if cmd.startswith("+"):  # full privileges: root
                run(shlex.split(cmd[1:]), env=self.env)
            else:
                argv, kw = syslog.wrap(shlex.split(cmd), unit.user, unit.group, unit.umask)
                run(argv, env=self.env, **kw)
        argv, kw = syslog.wrap(shlex.split(unit.start), unit.user, unit.group, unit.umask)
        log = open(log_path, "ab")
        self.addCleanup(log.close)
        self.daemon = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       start_new_session=True, **kw)
        self.mark(str(self.daemon.pid))  # unshare, sh and setpriv exec: the daemon keeps this pid
        try:
            _wait_until(lambda: _unix_connectable(SOCKET) or self.daemon.poll() is not None, 30, "socket")
        except TimeoutError:
            pass
        if self.daemon.poll() is not None:
            with open(log_path, errors="replace") as f:
                self.fail(f"daemon exited {self.daemon.returncode}; syslog:\n{syslog.text()}\n{f.read()}")
        syslog.wait(rf"cllavio-milter\[{self.daemon.pid}\]: ready: listening on unix:" + re.escape(SOCKET))
        self.assertEqual(os.readlink(f"/proc/{self.daemon.pid}/exe"), "/usr/sbin/cllavio-milter")
        with open(f"/proc/{self.daemon.pid}/status") as f:
            ids = dict(line.split(":", 1) for line in f if line.startswith(("Uid", "Gid", "Groups")))
        uid, gid = pwd.getpwnam(unit.user).pw_uid, grp.getgrnam(unit.group).gr_gid
        self.assertEqual((ids["Uid"].split(), ids["Gid"].split(), ids["Groups"].split()),
                         ([str(uid)] * 4, [str(gid)] * 4, []))
        st = os.stat(SOCKET)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual((oct(st.st_mode & 0o777), pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name),
                         (oct(0o660), "cllavio", "postfix"))

    def send_one(self, syslog: SyslogCapture):
        """One message through a private Postfix set up like Debian's: smtpd and cleanup chrooted
        into the queue directory, main.cf naming the socket as the postinst says, relative to it
        (unix:cllavio/milter.sock). The installed socket folder is bind-mounted (read-only: a
        socket stays connectable) into the private queue directory."""
        h = harness.Harness(milter=None, extra_milters=["unix:cllavio/milter.sock"], default_action="tempfail")
        master_cf = os.path.join(h.etc_dir, "master.cf")
        with open(master_cf) as f:
            text = f.read()
        chrooted = re.sub(r"^(\S+\s+(?:inet|unix)\s+\S+\s+\S+\s+)n(\s+\S+\s+\S+\s+(?:smtpd|cleanup))$", r"\1y\2",
                          text, flags=re.M)
        self.assertEqual(len(re.findall(r"\sy\s+\S+\s+\S+\s+(?:smtpd|cleanup)$", chrooted, re.M)), 2)
        with open(master_cf, "w") as f:
            f.write(chrooted)
        mounted = os.path.join(h.spool_dir, "cllavio")
        is_mounted = False
        try:
            os.mkdir(mounted)
            run(["mount", "--bind", os.path.dirname(SOCKET), mounted])
            is_mounted = True
            run(["mount", "-o", "remount,bind,ro", mounted])
            h.start()
            msgid = f"pkg-{os.getpid()}-{time.time_ns()}@unknown.example"
            r = h.swaks(sender="someone@unknown.example", rcpts=["bob@example.net"],
                        data=plain_message(msgid, sender="someone@unknown.example"))
            self.assertEqual(r.returncode, 0, r.stdout)
            [d] = h.wait_delivered(1, timeout=30)
            self.assertEqual(d.rcpts, ["bob@example.net"])
            self.assertIn(f"Message-ID: <{msgid}>".encode(), d.raw)
            self.assertNotRegex(h.maillog(), r"(?i)connect to milter|milter-reject|milter.*(unavailable|denied)")
            syslog.wait(rf"cllavio-milter\[\d+\]: {d.queue_id}: org=unknown .*msgid=<{re.escape(msgid)}>.* action=accept")
            # The chroot is real: the socket's path outside it does not work for smtpd (Postfix
            # applies milter_default_action = tempfail), which is why the postinst says the relative name.
            run(["postconf", "-c", h.etc_dir, "-e", f"smtpd_milters = unix:{mounted}/milter.sock"])
            h.reload_postfix()
            r = h.swaks(sender="someone@unknown.example", rcpts=["bob@example.net"],
                        data=plain_message("chroot-" + msgid, sender="someone@unknown.example"))
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertRegex(r.stdout, r"451 4\.7\.1")
            h.wait_log(rf"warning: connect to Milter service unix:{re.escape(mounted)}/milter.sock: "
                       r"No such file or directory", source="maillog")
        finally:
            h.postfix.stop()  # before the unmount: smtpd holds no connection to the socket then
            if is_mounted:  # (os.path.ismount does not see a bind mount within one file system)
                run(["umount", "--lazy", mounted])  # detached at once; h.close() must not reach into it
            h.close()
        out = run(["/usr/sbin/cllavioctl", "-c", CONFIG, "messages", "--json"]).stdout
        records = [json.loads(line) for line in out.splitlines() if line.strip()]
        [rec] = [m for m in records if msgid in m["message_id"]]
        self.assertEqual((rec["queue_id"], rec["org"], rec["action"], rec["from"]),
                         (d.queue_id, "", "accept", "someone@unknown.example"))  # "" = no organization (logged as org=unknown)

    # ------------------------------------------------------------------ the test

    def test_install_run_remove_purge(self):
        t0 = time.monotonic()
        postfix_cf = {p: digest(p) for p in ("/etc/postfix/main.cf", "/etc/postfix/master.cf")}
        tmp = tempfile.mkdtemp(prefix="cllavio-pkg-")
        os.chmod(tmp, 0o755)
        self.addCleanup(shutil.rmtree, tmp, True)
        deb = self.build_package(tmp)

        self.mark()
        r = run(["dpkg", "-i", deb], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        self.check_files(r.stdout + r.stderr)
        self.assertEqual({p: digest(p) for p in postfix_cf}, postfix_cf, "the package changed Postfix's files")
        unit = self.check_unit()

        syslog = SyslogCapture(tmp)
        self.addCleanup(syslog.close)
        self.start_as_systemd(unit, syslog, os.path.join(tmp, "daemon.out"))
        self.send_one(syslog)

        # ExecReload (kill -HUP $MAINPID), then a stop as systemd does it (SIGTERM, drain, exit 0).
        reload_cmd = shlex.split(unit.reload.replace("$MAINPID", str(self.daemon.pid)))
        start = len(syslog.text())
        run(reload_cmd)
        _wait_until(lambda: re.search(r"cllavio-milter\[\d+\]: reloaded " + re.escape(CONFIG), syslog.text()[start:]),
                    15, "reload log line")
        self.assertNotRegex(syslog.text()[start:], r"reload(:| failed)")
        os.kill(self.daemon.pid, signal.SIGTERM)
        self.assertEqual(self.daemon.wait(45), 0)
        self.daemon = None

        # remove: configuration and data stay; purge: nothing of the package stays.
        files = [p for p in run(["dpkg", "-L", PKG]).stdout.split() if not os.path.isdir(p)]
        run(["dpkg", "-r", PKG])
        self.assertTrue(os.path.isfile(CONFIG))
        self.assertTrue(os.path.isfile("/var/lib/cllavio/cllavio.mdb"))
        self.assertFalse(os.path.exists("/usr/sbin/cllavio-milter"))
        run(["dpkg", "--purge", PKG])
        self.assertFalse(installed())
        left = [p for p in [*files, *STATE_DIRS, "/etc/systemd/system/multi-user.target.wants/cllavio-milter.service",
                            "/var/lib/systemd/deb-systemd-helper-enabled/cllavio-milter.service.dsh-also"]
                if os.path.lexists(p)]
        self.assertEqual(left, [])
        pwd.getpwnam("cllavio")  # the system user stays (Debian policy), with no files of its own left
        print(f"[test_package] install, run, purge in {time.monotonic() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    unittest.main()
