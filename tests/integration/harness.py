"""Integration-test harness for cllavio-milter: a private Postfix, an smtp-sink next hop,
an optional private Dovecot SASL server, an optional local HTTPS API server and the milter
under test, all inside one temp dir.

Python 3.11 standard library only. Must run as root on Debian 12 with the packages
postfix, swaks, dovecot-core (only for sasl=True) and openssl (only for api=...) installed.

    with Harness(milter="unix", orgs={"acme": ACME_TOML}) as h:   # __enter__ starts everything
        r = h.swaks(sender="a@acme.example", rcpts=["b@example.net"], data=MSG)
        [d] = h.wait_delivered(1)
        h.wait_log(r"action=accept")

Harness is a facade over one part per concern, each in its own module:
    h.postfix  postfix_instance.PostfixInstance  main.cf/master.cf, start/stop, queue, maillog
    h.sink     sink.SmtpSink                     the next hop: process, dump files, counters
    h.dovecot  dovecot_sasl.DovecotSasl          SMTP AUTH accounts (None unless sasl=True)
    h.api      api_server.ApiServer              the stand-in Cllavio API (None unless api=...)
    h.milter   milter_daemon.MilterDaemon        config files, start/stop/kill/restart/reload, log, cllavioctl
    h.submit   submit.Submitter                  swaks, sendmail, smtp-source
    h.routes   routes.Routes                     named sinks (h.sinks) and the transport_maps routing to them
    h.reject   reject_milter.RejectMilter        a milter after cllavio's (None unless reject_milter=...)
    h.prometheus prometheus.Prometheus           a real Prometheus scraping [metrics] (None unless prometheus=...)
maillog.py parses Postfix's log (with its rotated files) into per-recipient outcomes and
rotates it (h.maillog_lines(), h.wait_status(), h.rotate_log()).
The milter's TOML files are rendered by toml_writer (org files given as text are written as
given); procs.py has the process, port, file and log helpers the parts share.
The facade's methods and attributes (h.swaks(), h.config_path, h.milter_proc...) delegate to them.

Layout of Harness.dir (a fresh tempfile.mkdtemp(prefix="cllavio-it-"), mode 0755):
    etc/main.cf, etc/master.cf     Postfix config dir (postfix -c DIR/etc)
    spool/                         queue_directory (pid/master.pid inside)
    data/                          data_directory (owned by postfix)
    maillog                        Postfix log (postlogd)
    sink/                          smtp-sink dump files, one per message (owned by postfix)
    sink.out, sink.err             smtp-sink counters (\\r separated) and diagnostics
    NAME/, NAME.out, NAME.err      the same for each named sink (sinks=...)
    etc/transport                  transport_maps (texthash) routing domains to named sinks
    reject/, reject_milter.log     the second milter's socket dir and log (reject_milter=...;
                                   reject2/... for the next one of a list)
    dovecot/                       private Dovecot auth server (sasl=True)
    api/ca/                        the API server's private CA and "localhost" certificate (api=...)
    prometheus/                    Prometheus's config, TSDB and log (prometheus=...)
    cllavio/cllavio.toml, cllavio/secrets.toml, cllavio/orgs.d/*.toml, cllavio/run/milter.sock,
    cllavio/store/                 the milter's files (secrets.toml only with secrets or api)
    milter.log                     the milter's stdout+stderr (appended across restarts)
    tmp/                           message files handed to swaks / smtp-source

Environment:
    CLLAVIO_MILTER    milter binary (default REPO/build/milter/cllavio-milter)
    CLLAVIO_CTL       cllavioctl binary (default REPO/build/cli/cllavioctl)
    CLLAVIO_KEEP_TMP  =1: close() keeps the temp dir (its path is printed to stderr)
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
import weakref

import maillog
import toml_writer
from api_server import ApiServer
from dovecot_sasl import DovecotSasl
from milter_daemon import DEFAULT_CTL, DEFAULT_MILTER, MilterDaemon
from postfix_instance import PostfixInstance, fast_expiry
from prometheus import Prometheus
from procs import _tail, _wait_log, free_port
from reject_milter import RejectMilter
from routes import ACCEPT, BLOCKED, MAILBOX_FULL, USER_UNKNOWN, Routes
from sink import Delivered, SmtpSink, dot_stuff, parse_sink_dump, to_crlf
from submit import Submitter

__all__ = ["Harness", "Delivered", "free_port", "parse_sink_dump", "to_crlf", "dot_stuff",
           "DEFAULT_MILTER", "DEFAULT_CTL", "fast_expiry", "ACCEPT", "MAILBOX_FULL", "USER_UNKNOWN", "BLOCKED"]

_live: "weakref.WeakSet[Harness]" = weakref.WeakSet()


@atexit.register
def _close_all():
    for h in list(_live):
        try:
            h.close()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass


class _Of:
    """A Harness attribute that is self.<part>.<name>: a path, a port, a process or a bound
    method of the part (None when the part is absent, e.g. h.dovecot_proc without sasl)."""

    def __init__(self, part: str, name: str):
        self.part, self.name = part, name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        part = getattr(obj, self.part)
        return None if part is None else getattr(part, self.name)


def _api_server(base_dir: str, api) -> ApiServer:
    """The API server for api=True | {ApiServer keyword arguments}, in base_dir/api on a free
    port (not started), its CA certificate readable by the unprivileged milter."""
    kw = {} if api is True else dict(api)
    kw.setdefault("port", free_port())
    workdir = os.path.join(base_dir, "api")
    os.makedirs(workdir, mode=0o755, exist_ok=True)
    server = ApiServer(workdir, **kw)
    for d in (workdir, server.ca.dir):
        os.chmod(d, 0o755)
    os.chmod(server.ca_file, 0o644)
    return server


class Harness(maillog.MaillogViews):
    """A private Postfix (+ smtp-sink, optional Dovecot SASL and API server, optional milter).

    milter: "unix" | "inet" | None (Postfix alone, no milter attached).
    default_action: Postfix milter_default_action ("accept" | "tempfail" | "reject").
    sasl: start a private Dovecot auth server and enable SMTP AUTH in smtpd.
    unknown: [orgs] unknown = ... in the milter config.
    orgs: {name: TOML text or dict} written to cllavio/orgs.d/NAME.toml (text as given).
    milter_user: [milter] user (None: omit the key).
    settings: {"table.key": value} overriding or adding keys of the milter's main file
        (e.g. {"milter.on_error": "tempfail", "store.map_size_mb": 1}); value None removes a key.
    secrets: the secrets file (tracking keys, API secrets) as a dict or TOML text; written
        mode 0600 for the milter user.
    extra_main: a dict or TOML text merged into the milter's main file after settings.
    postfix_main: extra/overriding main.cf parameters {name: value} (extension).
    sink_dump: False: the sink only counts messages (sink_counters()), dumps nothing (benchmarks).
    milter_command: run this milter instead of cllavio-milter: an argv list in which "{socket}"
        is replaced by the libmilter address and "{config}" by the main file's path (it must
        print "ready: listening on").
    api: True or {ApiServer keyword arguments: signing_secret, org_keys...}: start a local
        HTTPS API server (h.api) and point the milter at it: settings api.url and api.ca_file,
        secrets [api] signing_secret and org_keys (what settings/secrets give wins).
    sinks: {name: SmtpSink keyword arguments} more next hops (h.sinks[name]), e.g.
        {"full": MAILBOX_FULL, "unknown": USER_UNKNOWN} (see routes.py).
    routes: {domain: sink name | SmtpSink | "transport:nexthop"} in transport_maps; other
        domains go to the relayhost sink h.sink. h.set_routes() changes them while running.
    reject_milter: True or {code, xcode, text, header}: start reject_milter.c and add it to
        smtpd_milters/non_smtpd_milters after the milter under test (h.reject); by default it
        rejects with 550 5.7.1 the messages that have "X-Test-Reject: yes". A list of them:
        several, in that order (h.rejects).
    extra_milters: further Postfix milter addresses, appended to smtpd_milters as given.
    prometheus: True or {Prometheus keyword arguments: scrape_interval...}: the milter serves
        metrics ([metrics] listen = "127.0.0.1:<free port>" unless settings give metrics.listen)
        and a real Prometheus scrapes it (h.prometheus, started after the milter);
        h.metrics_port, h.scrape_metrics() read the endpoint directly.
    Queue lifetimes and other main.cf parameters: postfix_main=fast_expiry(...), or
    h.set_postfix_params({...}) while running (it reloads Postfix).
    """

    def __init__(self, *, milter="unix", default_action="tempfail", sasl=False, unknown="accept",
                 orgs=None, milter_user="nobody", extra_main=None, postfix_main=None, settings=None,
                 milter_command=None, sink_dump=True, secrets=None, api=None, sinks=None, routes=None,
                 reject_milter=None, extra_milters=(), prometheus=None):
        if milter not in ("unix", "inet", None):
            raise ValueError(f"milter must be 'unix', 'inet' or None, not {milter!r}")
        self.postfix: PostfixInstance | None = None
        self.sink: SmtpSink | None = None
        self.dovecot: DovecotSasl | None = None
        self.api: ApiServer | None = None
        self.milter: MilterDaemon | None = None
        self.submit: Submitter | None = None
        self.routes: Routes | None = None
        self.prometheus: Prometheus | None = None
        self.metrics_port: int | None = None
        self.rejects: list[RejectMilter] = []
        self._started = False
        self._closed = False
        self._lock = threading.Lock()

        self.dir = d = tempfile.mkdtemp(prefix="cllavio-it-")
        _live.add(self)
        try:
            os.chmod(d, 0o755)  # postfix / nobody / dovecot must traverse it
            self.sink = SmtpSink(d, dump=sink_dump)
            if sasl:
                self.dovecot = DovecotSasl(d, instance_name=os.path.basename(d))
            if api not in (None, False):
                self.api = _api_server(d, api)
                settings = {"api.url": self.api.url, "api.ca_file": self.api.ca_file, **(settings or {})}
                given = toml_writer.as_dict(secrets) if secrets is not None else {}
                secrets = toml_writer.merge({"api": {"signing_secret": self.api.signing_secret.decode(),
                                                     "org_keys": dict(self.api.org_keys)}}, given)
            if prometheus not in (None, False):
                settings = dict(settings or {})
                listen = settings.setdefault("metrics.listen", f"127.0.0.1:{free_port()}")
                self.metrics_port = int(listen.rsplit(":", 1)[1])
                self.prometheus = Prometheus(d, [listen], **({} if prometheus is True else dict(prometheus)))
            self.milter = MilterDaemon(d, kind=milter, user=milter_user, orgs=orgs, unknown=unknown,
                                       settings=settings, secrets=secrets, extra_main=extra_main,
                                       command=milter_command)
            specs = reject_milter if isinstance(reject_milter, (list, tuple)) else [reject_milter]
            for spec in (s for s in specs if s not in (None, False)):
                name = f"reject{len(self.rejects) + 1}" if self.rejects else "reject"
                self.rejects.append(RejectMilter(d, name=name, **({} if spec is True else dict(spec))))
            milters = [self.milter.postfix_address, *(r.postfix_address for r in self.rejects), *extra_milters]
            self.postfix = PostfixInstance(d, relay_port=self.sink.port, milter=milters,
                                           default_action=default_action, params=postfix_main,
                                           sasl_socket=self.dovecot.socket if self.dovecot else None)
            self.routes = Routes(d, self.postfix, sinks=sinks, routes=routes, dump=sink_dump)
            self.submit = Submitter(smtp_port=self.postfix.smtp_port, etc_dir=self.postfix.etc_dir,
                                    tmp_dir=os.path.join(d, "tmp"))
        except BaseException:
            self.close()
            raise

    @property
    def reject(self) -> RejectMilter | None:
        """The first reject milter (reject_milter=...), or None."""
        return self.rejects[0] if self.rejects else None

    # ------------------------------------------------------------------ paths, ports, processes

    etc_dir = _Of("postfix", "etc_dir")
    spool_dir = _Of("postfix", "spool_dir")
    data_dir = _Of("postfix", "data_dir")
    maillog_path = _Of("postfix", "maillog_path")
    smtp_port = _Of("postfix", "smtp_port")
    hostname = _Of("postfix", "hostname")
    sink_dir = _Of("sink", "dir")
    sink_port = _Of("sink", "port")
    sink_out_path = _Of("sink", "out_path")
    sink_err_path = _Of("sink", "err_path")
    sink_proc = _Of("sink", "proc")
    dovecot_dir = _Of("dovecot", "dir")
    sasl_socket = _Of("dovecot", "socket")
    sasl_passwd_path = _Of("dovecot", "passwd_path")
    dovecot_proc = _Of("dovecot", "proc")
    cllavio_dir = _Of("milter", "dir")
    config_path = _Of("milter", "config_path")
    orgs_dir = _Of("milter", "orgs_dir")
    store_dir = _Of("milter", "store_dir")
    milter_log_path = _Of("milter", "log_path")
    milter_socket = _Of("milter", "socket")
    milter_port = _Of("milter", "port")
    milter_addr_libmilter = _Of("milter", "libmilter_address")
    milter_addr_postfix = _Of("milter", "postfix_address")
    milter_proc = _Of("milter", "proc")
    tmp_dir = _Of("submit", "tmp_dir")

    # ------------------------------------------------------------------ start / stop

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        """Start sink, (dovecot), (API server), (milter), Postfix; return when each accepts
        connections. On failure everything is torn down (close()) and RuntimeError carries the logs."""
        if self._started:
            return self
        if self._closed:
            raise RuntimeError("harness already closed")
        try:
            self.sink.start()
            self.routes.start()
            if self.dovecot:
                self.dovecot.start()
            if self.api:
                self.api.start()
            if self.milter.kind is not None:
                self.milter.start()
            for r in self.rejects:
                r.start()
            if self.prometheus:
                self.prometheus.start()
            self.postfix.start()
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
                            *((f"{r.name}_milter.log", r.log_path) for r in self.rejects),
                            ("dovecot.log", self.dovecot and self.dovecot.log_path),
                            ("prometheus.log", self.prometheus and self.prometheus.log_path)):
            if path and os.path.exists(path):
                parts.append(f"--- {label} (tail) ---\n{_tail(path, 3000)}")
        if self.routes and self.routes.sinks:
            parts.append(f"--- sinks ---\n{self.routes.report()}")
        return "\n".join(parts)

    def close(self):
        """Stop everything of this instance and remove the temp dir (unless CLLAVIO_KEEP_TMP=1).
        Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        errors = []
        for part in (self.prometheus, self.postfix, self.milter, *self.rejects, self.dovecot, self.sink,
                     self.routes, self.api):
            try:
                if part is not None:
                    part.stop()
            except Exception as e:  # keep tearing down
                errors.append(e)
        _live.discard(self)
        if os.environ.get("CLLAVIO_KEEP_TMP") == "1":
            print(f"[harness] kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise errors[0]

    # ------------------------------------------------------------------ the milter

    write_config = _Of("milter", "write_config")
    start_milter = _Of("milter", "start")
    stop_milter = _Of("milter", "stop")
    kill_milter = _Of("milter", "kill")
    restart_milter = _Of("milter", "restart")
    reload_milter = _Of("milter", "reload")
    milter_log = _Of("milter", "log")
    ctl = _Of("milter", "ctl")
    ctl_messages = _Of("milter", "ctl_messages")

    # ------------------------------------------------------------------ SASL

    def add_sasl_user(self, login, password):
        """Add (or change the password of) an SMTP AUTH account of the private Dovecot
        (see DovecotSasl.add_user: while it runs this returns at the next wall-clock second)."""
        if self.dovecot is None:
            raise RuntimeError("harness started without sasl=True")
        self.dovecot.add_user(login, password)

    # ------------------------------------------------------------------ submitting mail

    swaks = _Of("submit", "swaks")
    sendmail = _Of("submit", "sendmail")
    smtp_source = _Of("submit", "smtp_source")

    # ------------------------------------------------------------------ routes, Postfix settings

    sinks = _Of("routes", "sinks")
    add_sink = _Of("routes", "add_sink")
    set_routes = _Of("routes", "set")
    sink_report = _Of("routes", "report")
    set_postfix_params = _Of("postfix", "set_params")
    reload_postfix = _Of("postfix", "reload")
    postlog = _Of("postfix", "postlog")

    # ------------------------------------------------------------------ observing

    def scrape_metrics(self, timeout: float = 10) -> str:
        """GET the milter's /metrics (prometheus=... or metrics.listen in settings): the text."""
        import urllib.request
        if self.metrics_port is None:
            listen = self.milter.main_config().get("metrics", {}).get("listen")
            if not listen:
                raise RuntimeError("the milter serves no metrics (no metrics.listen)")
            self.metrics_port = int(listen.rsplit(":", 1)[1])
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=timeout) as r:
            return r.read().decode()

    delivered = _Of("sink", "delivered")
    sink_counters = _Of("sink", "counters")
    postqueue = _Of("postfix", "postqueue")
    flush_queue = _Of("postfix", "flush_queue")
    maillog = _Of("postfix", "maillog")

    def wait_delivered(self, n, timeout=60, match=None) -> list[Delivered]:
        """Wait until the sink holds >= n complete messages (that satisfy match, if given);
        returns them all (arrival order). Bounces arrive here too (sender "").
        On timeout the TimeoutError shows Postfix's queue and the maillog's tail."""
        try:
            return self.sink.wait_delivered(n, timeout, match)
        except TimeoutError as e:
            try:
                queued = self.postfix.postqueue()
            except Exception:
                queued = []
            raise TimeoutError(f"{e}; queue: {queued}\n--- maillog tail ---\n"
                               f"{_tail(self.postfix.maillog_path, 3000)}") from None

    def _log(self, source):
        if source == "milter":
            return self.milter.log
        if source == "maillog":
            return self.postfix.maillog
        raise ValueError("source must be 'milter' or 'maillog'")

    def log_size(self, source="milter") -> int:
        """Current length (chars) of a log: pass it as wait_log(start=...) to ignore older lines."""
        return len(self._log(source)())

    def wait_log(self, pattern, timeout=30, source="milter", start=0):
        """Poll the milter log (source="milter") or Postfix's maillog (source="maillog") until
        re.search(pattern, log[start:], re.M) matches; returns the match. TimeoutError otherwise."""
        return _wait_log(self._log(source), pattern, timeout, f"{source} log", start)
