"""Integration-test harness for cllavio-milter: a private Postfix, an smtp-sink next hop,
an optional private Dovecot SASL server and the milter under test, all inside one temp dir.

Python 3.11 standard library only. Must run as root on Debian 12 with the packages
postfix, swaks, dovecot-core (only for sasl=True) installed.

    with Harness(milter="unix", orgs={"acme": ACME_TOML}) as h:   # __enter__ starts everything
        r = h.swaks(sender="a@acme.example", rcpts=["b@example.net"], data=MSG)
        [d] = h.wait_delivered(1)
        h.wait_log(r"action=accept")

Layout of Harness.dir (a fresh tempfile.mkdtemp(prefix="cllavio-it-"), mode 0755):
    etc/main.cf, etc/master.cf     Postfix config dir (postfix -c DIR/etc)
    spool/                         queue_directory (pid/master.pid inside)
    data/                          data_directory (owned by postfix)
    maillog                        Postfix log (postlogd)
    sink/                          smtp-sink dump files, one per message (owned by postfix)
    sink.out, sink.err             smtp-sink counters (\\r separated) and diagnostics
    dovecot/                       private Dovecot auth server (sasl=True)
    cllavio/cllavio.toml, cllavio/orgs.d/*.toml, cllavio/run/milter.sock, cllavio/store/
    milter.log                     the milter's stdout+stderr (appended across restarts)
    tmp/                           message files handed to swaks / smtp-source

Environment:
    CLLAVIO_MILTER    milter binary (default REPO/build/milter/cllavio-milter)
    CLLAVIO_CTL       cllavioctl binary (default REPO/build/cli/cllavioctl)
    CLLAVIO_KEEP_TMP  =1: close() keeps the temp dir (its path is printed to stderr)
"""

from __future__ import annotations

import atexit
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref

__all__ = ["Harness", "Delivered", "free_port", "parse_sink_dump", "to_crlf", "dot_stuff"]

from procs import (_find_exe, _kill, _killpg, _pgrp_alive, _pid_alive, _port_free, _run, _tail,  # noqa: E402
                   _tcp_banner, _toml_value, _unix_connectable, _wait_until, _write, free_port)
from sink import HOSTNAME, Delivered, dot_stuff, parse_sink_dump, to_crlf  # noqa: E402

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_MILTER = os.path.join(_REPO, "build", "milter", "cllavio-milter")
DEFAULT_CTL = os.path.join(_REPO, "build", "cli", "cllavioctl")
SINK_HOSTNAME = "sink.cllavio-it.test"


# --------------------------------------------------------------------------- the harness

_live: "weakref.WeakSet[Harness]" = weakref.WeakSet()


@atexit.register
def _close_all():
    for h in list(_live):
        try:
            h.close()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass


class Harness:
    """A private Postfix (+ smtp-sink, optional Dovecot SASL, optional cllavio-milter).

    milter: "unix" | "inet" | None (Postfix alone, no milter attached).
    default_action: Postfix milter_default_action ("accept" | "tempfail" | "reject").
    sasl: start a private Dovecot auth server and enable SMTP AUTH in smtpd.
    unknown: [orgs] unknown = ... in the milter config.
    orgs: {name: TOML text} written to cllavio/orgs.d/NAME.toml.
    milter_user: [milter] user (None: omit the key).
    extra_main: TOML appended to the milter's main config file, after the [log] table: start
        it with a [table] header (keys before any header would land in [log]).
    postfix_main: extra/overriding main.cf parameters {name: value} (extension).
    sink_dump: False: the sink only counts messages (sink_counters()), dumps nothing (benchmarks).
    secrets: TOML text of the secrets file (tracking keys); written mode 0600 for the milter user.
    milter_command: run this milter instead of cllavio-milter: an argv list in which "{socket}"
        is replaced by the libmilter address (it must print "ready: listening on").
    settings: {"table.key": value} overriding or adding keys of the milter's main file
        (e.g. {"milter.on_error": "tempfail", "store.map_size_mb": 1}); value None removes a key.
    """

    def __init__(self, *, milter="unix", default_action="tempfail", sasl=False, unknown="accept",
                 orgs=None, milter_user="nobody", extra_main="", postfix_main=None, settings=None,
                 milter_command=None, sink_dump=True, secrets=None):
        if milter not in ("unix", "inet", None):
            raise ValueError(f"milter must be 'unix', 'inet' or None, not {milter!r}")
        self.milter_kind = milter
        self.default_action = default_action
        self.sasl = bool(sasl)
        self.unknown = unknown
        self.orgs = dict(orgs or {})
        self.milter_user = milter_user
        self.extra_main = extra_main or ""
        self.settings = dict(settings or {})
        self.secrets = secrets
        self.milter_command = milter_command
        self.sink_dump = sink_dump
        self.postfix_main = dict(postfix_main or {})
        self.hostname = HOSTNAME

        self.milter_proc: subprocess.Popen | None = None
        self.sink_proc: subprocess.Popen | None = None
        self.dovecot_proc: subprocess.Popen | None = None
        self._postfix_started = False
        self._started = False
        self._closed = False
        self._sasl_users: dict[str, str] = {}
        self._tmp_seq = 0
        self._lock = threading.Lock()

        self.dir = tempfile.mkdtemp(prefix="cllavio-it-")
        _live.add(self)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ setup / config

    def _setup(self):
        d = self.dir
        os.chmod(d, 0o755)  # postfix / nobody / dovecot must traverse it
        self.etc_dir = os.path.join(d, "etc")
        self.spool_dir = os.path.join(d, "spool")
        self.data_dir = os.path.join(d, "data")
        self.sink_dir = os.path.join(d, "sink")
        self.tmp_dir = os.path.join(d, "tmp")
        self.maillog_path = os.path.join(d, "maillog")
        self.milter_log_path = os.path.join(d, "milter.log")
        self.sink_out_path = os.path.join(d, "sink.out")
        self.sink_err_path = os.path.join(d, "sink.err")
        self.cllavio_dir = os.path.join(d, "cllavio")
        self.config_path = os.path.join(self.cllavio_dir, "cllavio.toml")
        self.orgs_dir = os.path.join(self.cllavio_dir, "orgs.d")
        self.store_dir = os.path.join(self.cllavio_dir, "store")
        self.dovecot_dir = os.path.join(d, "dovecot")
        self.sasl_socket = os.path.join(self.dovecot_dir, "auth-postfix")
        self.sasl_passwd_path = os.path.join(self.dovecot_dir, "passwd")

        for p in (self.etc_dir, self.spool_dir, self.tmp_dir, self.cllavio_dir, self.orgs_dir):
            os.makedirs(p, mode=0o755, exist_ok=True)
        pf = pwd.getpwnam("postfix")
        for p, mode in ((self.data_dir, 0o700), (self.sink_dir, 0o755)):
            os.makedirs(p, mode=mode, exist_ok=True)
            os.chown(p, pf.pw_uid, pf.pw_gid)
            os.chmod(p, mode)
        os.chmod(self.tmp_dir, 0o755)

        self.smtp_port = free_port()
        self.sink_port = free_port()
        if self.milter_kind == "unix":
            self.milter_socket = os.path.join(self.cllavio_dir, "run", "milter.sock")
            self.milter_addr_libmilter = f"unix:{self.milter_socket}"
            self.milter_addr_postfix = f"unix:{self.milter_socket}"
            self.milter_port = None
        elif self.milter_kind == "inet":
            self.milter_socket = None
            self.milter_port = free_port()
            self.milter_addr_libmilter = f"inet:{self.milter_port}@127.0.0.1"
            self.milter_addr_postfix = f"inet:127.0.0.1:{self.milter_port}"
        else:
            self.milter_socket = None
            self.milter_port = None
            self.milter_addr_libmilter = None
            self.milter_addr_postfix = None

        self._write_postfix_config()
        if self.sasl:
            self._write_dovecot_config()
        self.write_config()

    def _main_cf_params(self) -> dict:
        d = self.dir
        milters = self.milter_addr_postfix or ""
        p = {
            "compatibility_level": "3.6",
            "queue_directory": self.spool_dir,
            "data_directory": self.data_dir,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.hostname,
            "mydomain": "cllavio-it.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_transport": "error:local delivery disabled",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, permit_sasl_authenticated, reject",
            "relayhost": f"[127.0.0.1]:{self.sink_port}",
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "local_header_rewrite_clients": "",
            "disable_mime_output_conversion": "yes",
            "message_drop_headers": "",  # keep Return-Path, Content-Length...: byte-identity tests
            "enable_long_queue_ids": "no",
            "append_dot_mydomain": "no",
            "biff": "no",
            "notify_classes": "",
            "maillog_file": self.maillog_path,
            "maillog_file_prefixes": d,
            "smtpd_banner": "$myhostname ESMTP",
            "smtpd_tls_security_level": "none",
            "smtp_tls_security_level": "none",
            "smtpd_milters": milters,
            "non_smtpd_milters": milters,
            "milter_protocol": "6",
            "milter_default_action": self.default_action,
            "milter_connect_timeout": "5s",
            "milter_command_timeout": "10s",
            "milter_content_timeout": "30s",
            # fast queue handling for tests
            "queue_run_delay": "2s",
            "minimal_backoff_time": "2s",
            "maximal_backoff_time": "4s",
            "in_flow_delay": "0",
            "smtp_connect_timeout": "5s",
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "100",
            "smtpd_hard_error_limit": "200",
            "smtpd_client_connection_count_limit": "0",
            "default_process_limit": "50",
        }
        if self.sasl:
            p.update({
                "smtpd_sasl_auth_enable": "yes",
                "smtpd_sasl_type": "dovecot",
                "smtpd_sasl_path": self.sasl_socket,
                "smtpd_sasl_security_options": "noanonymous",
                "smtpd_tls_auth_only": "no",
                "broken_sasl_auth_clients": "no",
            })
        p.update(self.postfix_main)
        return p

    def _write_postfix_config(self):
        lines = ["# generated by tests/integration/harness.py"]
        for k, v in self._main_cf_params().items():
            lines.append(f"{k} = {v}")
        _write(os.path.join(self.etc_dir, "main.cf"), "\n".join(lines) + "\n")
        master = f"""\
# generated by tests/integration/harness.py -- chroot off everywhere
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:{self.smtp_port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
        _write(os.path.join(self.etc_dir, "master.cf"), master)

    def _write_dovecot_config(self):
        dd = self.dovecot_dir
        os.makedirs(os.path.join(dd, "run"), mode=0o755, exist_ok=True)
        os.makedirs(os.path.join(dd, "state"), mode=0o755, exist_ok=True)
        os.chmod(dd, 0o755)
        self.dovecot_conf = os.path.join(dd, "dovecot.conf")
        self.dovecot_log = os.path.join(dd, "dovecot.log")
        conf = f"""\
# generated by tests/integration/harness.py: auth service only, no mail protocols
base_dir = {dd}/run
state_dir = {dd}/state
log_path = {self.dovecot_log}
instance_name = {os.path.basename(self.dir)}
protocols =
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_cache_size = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.sasl_passwd_path}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener {self.sasl_socket} {{
    mode = 0666
  }}
}}
service anvil {{
  # without this socket the auth process disables its anvil "auth penalty" (failed logins
  # from one IP delayed 2, 4, 8, 15 s), which would slow down wrong-password tests
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        _write(self.dovecot_conf, conf)
        self._write_sasl_passwd()

    def _write_sasl_passwd(self):
        body = "".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self._sasl_users.items())
        tmp = self.sasl_passwd_path + ".tmp"
        _write(tmp, body, mode=0o644)
        # Dovecot re-reads a passwd-file when its mtime (whole seconds) or size changed: a
        # same-size rewrite within one second would go unnoticed, so force a later mtime.
        self._passwd_mtime = max(int(time.time()), getattr(self, "_passwd_mtime", 0) + 1)
        os.utime(tmp, (self._passwd_mtime, self._passwd_mtime))
        os.replace(tmp, self.sasl_passwd_path)

    def write_config(self, orgs=None, unknown=None, extra_main=None, settings=None):
        """(Re)write the milter's main TOML and orgs.d/*.toml. Arguments that are None keep
        their previous value. orgs replaces the whole set (files of dropped orgs are removed);
        settings ({"table.key": value}) is merged into the previous settings.
        Call reload_milter() afterwards to make a running milter pick it up."""
        if orgs is not None:
            self.orgs = dict(orgs)
        if unknown is not None:
            self.unknown = unknown
        if extra_main is not None:
            self.extra_main = extra_main
        if settings is not None:
            self.settings.update(settings)
        # inet in Postfix syntax (inet:HOST:PORT): the milter accepts both dialects
        socket_spec = self.milter_addr_postfix or f"unix:{os.path.join(self.cllavio_dir, 'run', 'milter.sock')}"
        tables = {
            "milter": {"socket": socket_spec, "socket_mode": "0660", "group": "postfix",
                       "user": self.milter_user, "on_error": "accept"},
            "store": {"path": self.store_dir},
            "orgs": {"dir": "orgs.d", "unknown": self.unknown},
            "log": {"target": "stderr", "level": "info"},
        }
        if self.secrets is not None:
            secrets_path = os.path.join(self.cllavio_dir, "secrets.toml")
            _write(secrets_path, self.secrets, mode=0o600)
            if self.milter_user:  # readable by the unprivileged milter for reloads
                pw = pwd.getpwnam(self.milter_user)
                os.chown(secrets_path, pw.pw_uid, pw.pw_gid)
            tables["secrets"] = {"file": "secrets.toml"}
        for dotted, value in self.settings.items():
            table, key = dotted.split(".", 1)
            tables.setdefault(table, {})[key] = value
        lines = ["# generated by tests/integration/harness.py"]
        for table, keys in tables.items():
            lines.append(f"[{table}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in keys.items() if v is not None]
            lines.append("")
        text = "\n".join(lines)
        if self.extra_main:
            text += "\n" + self.extra_main.rstrip("\n") + "\n"
        for name in os.listdir(self.orgs_dir):
            if name.endswith(".toml") and name[:-5] not in self.orgs:
                os.unlink(os.path.join(self.orgs_dir, name))
        for name, toml in self.orgs.items():
            if "/" in name or not name:
                raise ValueError(f"bad org file name {name!r}")
            _write(os.path.join(self.orgs_dir, f"{name}.toml"), toml if toml.endswith("\n") else toml + "\n")
        _write(self.config_path, text)

    # ------------------------------------------------------------------ start / stop

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        """Start sink, (dovecot), (milter), Postfix; return when each accepts connections.
        On failure everything is torn down (close()) and RuntimeError carries the logs."""
        if self._started:
            return self
        if self._closed:
            raise RuntimeError("harness already closed")
        try:
            self._start_sink()
            if self.sasl:
                self._start_dovecot()
            if self.milter_kind is not None:
                self.start_milter()
            self._start_postfix()
            self._started = True
        except BaseException as e:
            diag = self._diagnostics()
            self.close()
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            raise RuntimeError(f"harness start failed: {e}\n{diag}") from e
        return self

    def _diagnostics(self) -> str:
        parts = [f"harness dir: {self.dir}"]
        for label, path in (("maillog", self.maillog_path), ("milter.log", self.milter_log_path),
                            ("sink.err", self.sink_err_path),
                            ("dovecot.log", getattr(self, "dovecot_log", ""))):
            if path and os.path.exists(path):
                parts.append(f"--- {label} (tail) ---\n{_tail(path, 3000)}")
        return "\n".join(parts)

    def _start_sink(self):
        sink = _find_exe("smtp-sink")
        args = [sink, "-u", "postfix", "-4", "-c", "-h", SINK_HOSTNAME]
        if self.sink_dump:
            args += ["-d", os.path.join(self.sink_dir, "msg.")]
        args += [f"127.0.0.1:{self.sink_port}", "256"]
        out = open(self.sink_out_path, "ab")
        err = open(self.sink_err_path, "ab")
        try:
            self.sink_proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                              start_new_session=True, close_fds=True)
        finally:
            out.close()
            err.close()

        def ready():
            if self.sink_proc.poll() is not None:
                raise RuntimeError(f"smtp-sink exited with {self.sink_proc.returncode}: {_tail(self.sink_err_path)}")
            b = _tcp_banner(self.sink_port)
            return b is not None and b.startswith(b"220")
        _wait_until(ready, 15, f"smtp-sink on port {self.sink_port}")

    def _start_dovecot(self):
        dovecot = _find_exe("dovecot")
        out = os.path.join(self.dovecot_dir, "dovecot.out")
        with open(out, "ab") as log:
            self.dovecot_proc = subprocess.Popen([dovecot, "-F", "-c", self.dovecot_conf],
                                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                                 start_new_session=True, close_fds=True)

        def ready():
            if self.dovecot_proc.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self.dovecot_proc.returncode}: {_tail(out)}"
                                   f"{_tail(self.dovecot_log)}")
            return os.path.exists(self.sasl_socket) and _unix_connectable(self.sasl_socket)
        _wait_until(ready, 20, f"dovecot auth socket {self.sasl_socket}")

    def _postfix(self, *args, timeout=60):
        return _run([_find_exe("postfix"), "-c", self.etc_dir, *args], timeout=timeout, text=True)

    def _start_postfix(self):
        r = self._postfix("check", timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"postfix check failed ({r.returncode}): {r.stdout}{r.stderr}")
        # `postfix check` just ran the integrity checks (and created the queue dirs): the
        # quick-start flag makes `postfix start` skip running them a second time (~1 s).
        _write(os.path.join(self.spool_dir, "quick-start"), "")
        r = self._postfix("start", timeout=60)
        self._postfix_started = True
        if r.returncode != 0:
            raise RuntimeError(f"postfix start failed ({r.returncode}): {r.stdout}{r.stderr}")

        def ready():
            pid = self._master_pid()
            if pid is None or not _pid_alive(pid):
                return False
            b = _tcp_banner(self.smtp_port)
            return b is not None and b.startswith(b"220")
        _wait_until(ready, 30, f"Postfix smtpd on port {self.smtp_port}")

    def _master_pid(self) -> int | None:
        try:
            with open(os.path.join(self.spool_dir, "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def _instance_pids(self) -> list[int]:
        """Processes of this Postfix instance: master exports MAIL_CONFIG=<etc dir> to all
        its children, and the postfix/postdrop/sendmail commands get it too."""
        want = f"MAIL_CONFIG={self.etc_dir}".encode()
        pids = []
        me = os.getpid()
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me:
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if want in env and _pid_alive(int(name)):
                pids.append(int(name))
        return pids

    def _stop_postfix(self):
        if not self._postfix_started:
            return
        self._postfix_started = False
        master = self._master_pid()
        self._postfix("stop", timeout=30)
        if master is not None:
            try:
                _wait_until(lambda: not _pid_alive(master), 15, "Postfix master to exit")
            except TimeoutError:
                _kill(master, signal.SIGKILL)
        try:
            _wait_until(lambda: not self._instance_pids(), 5, "Postfix daemons to exit")
        except TimeoutError:
            for pid in self._instance_pids():
                _kill(pid, signal.SIGKILL)
            try:
                _wait_until(lambda: not self._instance_pids(), 5, "Postfix daemons to die")
            except TimeoutError:
                pass

    def start_milter(self):
        """Start the milter (binary from $CLLAVIO_MILTER) and wait for its 'ready: listening on'."""
        if self.milter_kind is None:
            raise RuntimeError("this harness has milter=None")
        if self.milter_proc is not None and self.milter_proc.poll() is None:
            raise RuntimeError("milter already running")
        if self.milter_command:
            argv = [a.replace("{socket}", self.milter_addr_libmilter) for a in self.milter_command]
            if self.milter_socket:
                os.makedirs(os.path.dirname(self.milter_socket), mode=0o755, exist_ok=True)
        else:
            argv = [os.environ.get("CLLAVIO_MILTER", DEFAULT_MILTER), "-c", self.config_path]
        exe = argv[0]
        if not os.access(exe, os.X_OK):
            raise FileNotFoundError(f"milter binary not found: {exe} (set CLLAVIO_MILTER)")
        if self.milter_socket and os.path.exists(self.milter_socket):
            os.unlink(self.milter_socket)  # stale socket of a killed milter
        start_off = self._size(self.milter_log_path)
        with open(self.milter_log_path, "ab") as log:
            self.milter_proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                                stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True, close_fds=True)
        proc = self.milter_proc

        def ready():
            if proc.poll() is not None:
                raise RuntimeError(f"milter exited with {proc.returncode}:\n"
                                   f"{self.milter_log()[start_off:][-3000:]}")
            if "ready: listening on" not in self._read(self.milter_log_path)[start_off:]:
                return False
            if self.milter_socket:
                return _unix_connectable(self.milter_socket)
            return not _port_free(self.milter_port)
        _wait_until(ready, 30, "milter 'ready: listening on'")
        return proc

    def stop_milter(self, timeout=15):
        """SIGTERM and wait; SIGKILL after timeout. Returns the exit code (None if not running)."""
        p = self.milter_proc
        if p is None:
            return None
        if p.poll() is None:
            _kill(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                _killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        if _pgrp_alive(p.pid):
            _killpg(p.pid, signal.SIGKILL)  # anything it forked
        return p.returncode

    def kill_milter(self):
        """SIGKILL the milter (simulated crash). Returns its exit code (-9)."""
        p = self.milter_proc
        if p is None:
            return None
        if p.poll() is None:
            _killpg(p.pid, signal.SIGKILL)
            _kill(p.pid, signal.SIGKILL)
            p.wait(10)
        return p.returncode

    def reload_milter(self):
        """SIGHUP the running milter."""
        p = self.milter_proc
        if p is None or p.poll() is not None:
            raise RuntimeError("milter not running")
        os.kill(p.pid, signal.SIGHUP)

    def _stop_proc(self, p: subprocess.Popen | None, sig=signal.SIGTERM, timeout=10):
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
        # the process group may still hold children (dovecot's auth/log processes)
        deadline = time.monotonic() + 5
        while _pgrp_alive(p.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pgrp_alive(p.pid):
            _killpg(p.pid, signal.SIGKILL)

    def close(self):
        """Stop everything of this instance and remove the temp dir (unless CLLAVIO_KEEP_TMP=1).
        Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        errors = []
        for step in (self._stop_postfix,
                     lambda: self.stop_milter() if self.milter_proc else None,
                     lambda: self._stop_proc(self.dovecot_proc),
                     lambda: self._stop_proc(self.sink_proc)):
            try:
                step()
            except Exception as e:  # keep tearing down
                errors.append(e)
        _live.discard(self)
        if os.environ.get("CLLAVIO_KEEP_TMP") == "1":
            print(f"[harness] kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise errors[0]

    # ------------------------------------------------------------------ SASL

    def add_sasl_user(self, login, password):
        """Add (or change the password of) an SMTP AUTH account in the private Dovecot
        passwd-file. Takes effect for the next AUTH (Dovecot re-reads the changed file);
        while Dovecot runs this returns at the next wall-clock second (<= ~1 s)."""
        if not self.sasl:
            raise RuntimeError("harness started without sasl=True")
        if ":" in login or "\n" in login or "\n" in password:
            raise ValueError("login/password must not contain ':' or newlines")
        self._sasl_users[login] = password
        self._write_sasl_passwd()
        if self.dovecot_proc is not None:
            # Dovecot stats the passwd-file at most once per ioloop second: a lookup in the
            # second of an earlier lookup would still use the old contents. Wait for the
            # next second so that every AUTH from now on sees this change.
            now = time.time()
            time.sleep(int(now) + 1.02 - now)

    # ------------------------------------------------------------------ submitting mail

    def _tmpfile(self, data: bytes, suffix=".eml") -> str:
        with self._lock:
            self._tmp_seq += 1
            n = self._tmp_seq
        path = os.path.join(self.tmp_dir, f"msg{n:05d}{suffix}")
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
                "--helo", "client.cllavio-it.test"]
        if data is not None:
            payload = to_crlf(bytes(data))
            if not payload.endswith(b"\r\n"):
                payload += b"\r\n"
            # swaks sends the payload then CRLF: ending it in '.' makes the terminator line
            args += ["--data", "@" + self._tmpfile(dot_stuff(payload) + b"."), "--no-data-fixup"]
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
        args = [_find_exe("smtp-source"), "-c", "-s", str(sessions), "-m", str(count),
                "-f", sender, "-t", rcpt, "-M", "client.cllavio-it.test"]
        if size is not None and file is not None:
            raise ValueError("give size or file, not both")
        if size is not None:
            args += ["-l", str(size)]
        if file is not None:
            if isinstance(file, (bytes, bytearray)):
                file = self._tmpfile(bytes(file))
            args += ["-F", str(file)]
        args += list(extra_args)
        args.append(f"127.0.0.1:{self.smtp_port}")
        return _run(args, timeout=timeout, text=True)

    # ------------------------------------------------------------------ observing

    def _sink_open_files(self) -> set[str]:
        """Dump files the sink still holds open (transactions in progress)."""
        out = set()
        p = self.sink_proc
        if p is None or p.poll() is not None:
            return out
        fd_dir = f"/proc/{p.pid}/fd"
        try:
            for fd in os.listdir(fd_dir):
                try:
                    target = os.readlink(os.path.join(fd_dir, fd))
                except OSError:
                    continue
                if target.startswith(self.sink_dir + "/"):
                    out.add(target)
        except OSError:
            pass
        return out

    def delivered(self, match=None) -> list[Delivered]:
        """Every message the sink has completely received, in arrival order (file mtime).
        match: optional predicate(Delivered) -> bool to keep only some."""
        try:
            names = os.listdir(self.sink_dir)
        except FileNotFoundError:
            return []
        open_now = self._sink_open_files()  # listed after the listdir: a closed file is complete
        items = []
        for name in names:
            path = os.path.join(self.sink_dir, name)
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

    def wait_delivered(self, n, timeout=60, match=None) -> list[Delivered]:
        """Wait until the sink holds >= n complete messages (that satisfy match, if given);
        returns them all (arrival order). Bounces arrive here too (sender "")."""
        got: list = []

        def enough():
            nonlocal got
            got = self.delivered(match)
            return len(got) >= n
        try:
            _wait_until(enough, timeout, f"{n} delivered message(s)")
        except TimeoutError as e:
            queued = []
            try:
                queued = self.postqueue()
            except Exception:
                pass
            raise TimeoutError(f"{e}: sink has {len(got)}; queue: {queued}\n--- maillog tail ---\n"
                               f"{_tail(self.maillog_path, 3000)}") from None
        return got

    def sink_counters(self) -> dict:
        """Last 'sess=N quit=N mesg=N' line of smtp-sink -c, as ints."""
        text = self._read(self.sink_out_path)
        parts = [p for p in re.split(r"[\r\n]", text) if p.startswith("sess=")]
        if not parts:
            return {"sess": 0, "quit": 0, "mesg": 0}
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", parts[-1])}

    @staticmethod
    def _read(path) -> str:
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    @staticmethod
    def _size(path) -> int:
        try:
            return os.path.getsize(path)
        except OSError:
            return 0

    def milter_log(self) -> str:
        """Everything the milter(s) of this harness wrote to stdout/stderr so far."""
        return self._read(self.milter_log_path)

    def maillog(self) -> str:
        return self._read(self.maillog_path)

    def log_size(self, source="milter") -> int:
        """Current length (chars) of a log: pass it as wait_log(start=...) to ignore older lines."""
        return len(self.milter_log() if source == "milter" else self.maillog())

    def wait_log(self, pattern, timeout=30, source="milter", start=0) -> re.Match:
        """Poll the milter log (source="milter") or Postfix's maillog (source="maillog") until
        re.search(pattern, log[start:], re.M) matches; returns the match. TimeoutError otherwise."""
        if source not in ("milter", "maillog"):
            raise ValueError("source must be 'milter' or 'maillog'")
        rx = re.compile(pattern, re.M) if isinstance(pattern, str) else pattern
        read = self.milter_log if source == "milter" else self.maillog

        def found():
            return rx.search(read()[start:])
        try:
            return _wait_until(found, timeout, f"/{rx.pattern}/ in the {source} log")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n--- {source} tail ---\n{read()[start:][-3000:]}") from None

    def ctl(self, *args, check=True, timeout=60) -> subprocess.CompletedProcess:
        """cllavioctl -c config_path ARGS (binary from $CLLAVIO_CTL), text output."""
        exe = os.environ.get("CLLAVIO_CTL", DEFAULT_CTL)
        if not os.access(exe, os.X_OK):
            raise FileNotFoundError(f"cllavioctl not found: {exe} (set CLLAVIO_CTL)")
        return _run([exe, "-c", self.config_path, *map(str, args)], timeout=timeout, check=check, text=True)

    def ctl_messages(self, *args) -> list[dict]:
        """`cllavioctl messages --json ARGS` parsed (one dict per line)."""
        r = self.ctl("messages", "--json", *args)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def postqueue(self) -> list[dict]:
        """Messages still in the Postfix queue (postqueue -j, one dict each)."""
        r = _run([_find_exe("postqueue"), "-c", self.etc_dir, "-j"], timeout=30, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"postqueue -j failed: {r.stderr}")
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def flush_queue(self):
        """postqueue -f: retry deferred mail now."""
        return _run([_find_exe("postqueue"), "-c", self.etc_dir, "-f"], timeout=30, text=True)


