"""A local HTTPS stand-in for the Cllavio API, for the event forwarder, consent sync and erasure tests.

Python 3.11 standard library only, plus the `openssl` command-line tool (for the private CA).

    with ApiServer(tmpdir) as api:             # makes tmpdir/ca/*, listens on 127.0.0.1:api.port
        ... point the milter at api.url with ca_file = api.ca_file ...
        events = api.wait_events(3)
        api.fail_mode = "429"                   # or api.fail_next(2, "500"), api.refuse() ...

TLS: CA(dir) writes a self-signed EC P-256 CA (ca.pem) and a server cert for "localhost"
(SAN DNS:localhost, IP:127.0.0.1) signed by it; clients verify peer and host against ca.pem.
The server speaks HTTP/1.1 with keep-alive; every answer carries Content-Length.

POST /v1/events   body {"events": [...]}, every event with the same "org" (and an "id").
    Checked in this order: Cllavio-Signature "t=<unix s>,v1=<hex HMAC-SHA256(secret, t + '.' + body)>"
    (missing, wrong, or |t - now| > max_skew -> 401); body JSON with a non-empty "events" list (else 400);
    one org per batch (mixed -> 400); Authorization "Bearer <org_keys[org]>" (else 401);
    Idempotency-Key present (else 400); no event id in reject_event_ids (else 422
    {"error": "bad event", "ids": [...]}). Success: 200 {"accepted": n}, events appended to .events.
GET /v1/orgs/{org}/consent?cursor=C
    Bearer auth for org (else 401) -> 200 {"changes": [...after C...], "cursor": "<index>"};
    changes come from add_consent_change(); an absent/empty cursor starts at the beginning.
GET /v1/erasures?org=ORG&cursor=C
    Bearer auth for org (else 401) -> 200 {"erasures": [...], "cursor": "<index>", "more": bool}:
    at most erasure_page_size requests after C ("more" when others follow); requests come
    from add_erasure(); an absent/empty cursor starts at the beginning; a non-numeric cursor -> 400.

Failure injection (any thread, any time):
    fail_mode  None | "refuse" | "500" | "429" | "hang" | "malformed", applies to every request.
               "refuse" closes the listening socket and the open connections (resume() / any other
               mode listens again on the same port); "429" sends Retry-After: <retry_after>;
               "hang" reads the request and never answers: the connection is dropped when the mode
               changes, release_hangs() is called or the server stops; "malformed" is 200 b"<html>oops".
    fail_next(n, mode)   the next n POST requests get mode ("500" | "429" | "hang" | "malformed").
    reject_event_ids     set of event ids answered with 422 (after all other checks pass).

The GET requests' signature (over their empty body) is recorded in "signature_ok", not
required.

Records: .requests is a list of dicts, one per request in arrival order, rejected ones included:
    {"time", "method", "path", "query", "headers" (case-insensitive dict), "body" (bytes), "json" (or None),
     "status" (int answered; None while hanging or if never answered), "signature_ok" (bool),
     "idempotency_key" (or None), "mode" (injected failure applied, or None)}.
.events lists the accepted events in arrival order, duplicates (retries) kept.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

__all__ = ["CA", "ApiServer", "sign"]

MODES = (None, "refuse", "500", "429", "hang", "malformed")
_CONSENT_RE = re.compile(r"^/v1/orgs/([^/]+)/consent$")
_ERASURES = "/v1/erasures"


def sign(body: bytes, secret: bytes, t: int | None = None) -> str:
    """The Cllavio-Signature header value for body (t defaults to now)."""
    t = int(time.time()) if t is None else int(t)
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


# --------------------------------------------------------------------------- private CA

_CA_EXT = """[req]
distinguished_name = dn
x509_extensions = v3_ca
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class CA:
    """A private CA and a "localhost" server certificate in directory (created if needed).

    ca_file: CA certificate (PEM), what clients verify against; cert_file / key_file: the
    server certificate and its key. Files already present are reused.
    """

    def __init__(self, directory: str):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca_key = os.path.join(directory, "ca.key")
        self.ca_file = os.path.join(directory, "ca.pem")
        self.key_file = os.path.join(directory, "server.key")
        self.cert_file = os.path.join(directory, "server.pem")
        if not all(os.path.exists(p) for p in (self.ca_file, self.cert_file, self.key_file)):
            self._create()

    def _openssl(self, *args: str) -> None:
        r = subprocess.run(["openssl", *args], cwd=self.dir, capture_output=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {r.stderr.decode(errors='replace')}")

    def _create(self) -> None:
        cnf = os.path.join(self.dir, "openssl.cnf")
        with open(cnf, "w") as f:
            f.write(_CA_EXT)
        csr = os.path.join(self.dir, "server.csr")
        for key in (self.ca_key, self.key_file):
            self._openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                          "-out", key)
        self._openssl("req", "-config", cnf, "-x509", "-new", "-key", self.ca_key, "-sha256",
                      "-days", "30", "-subj", "/CN=Cllavio Integration Test CA", "-out", self.ca_file)
        self._openssl("req", "-config", cnf, "-new", "-key", self.key_file, "-subj", "/CN=localhost",
                      "-out", csr)
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca_file, "-CAkey", self.ca_key,
                      "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-sha256",
                      "-days", "30", "-extfile", cnf, "-extensions", "v3_server", "-out", self.cert_file)


# --------------------------------------------------------------------------- the server

class CIDict(dict):
    """Header fields as received (names keep their case); [], get() and `in` ignore case."""

    def _key(self, name):
        return next((k for k in self.keys() if k.lower() == str(name).lower()), name)

    def __getitem__(self, name):
        return dict.__getitem__(self, self._key(name))

    def __contains__(self, name):
        return dict.__contains__(self, self._key(name))

    def get(self, name, default=None):
        return dict.get(self, self._key(name), default)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CllavioTestAPI/1"
    timeout = 120  # idle keep-alive connections end eventually

    def setup(self):
        super().setup()
        self.server.api._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.api._track(self.connection, False)

    def log_message(self, format, *args):  # noqa: A002 - quiet unless asked
        if self.server.api.verbose:
            super().log_message(format, *args)

    def do_GET(self):
        self.server.api._handle(self, self.command)

    do_POST = do_GET

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status: int, body: bytes, ctype="application/json", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False   # server_close() must not wait for hanging handlers
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if self.api.verbose:
            super().handle_error(request, client_address)


class ApiServer:
    """The fake Cllavio API (see the module docstring). start()/stop(), or use as a context manager."""

    def __init__(self, workdir: str, signing_secret: bytes = b"test-signing-secret",
                 org_keys: dict[str, str] | None = None, port: int | None = None, verbose=False):
        self.ca = CA(os.path.join(workdir, "ca"))
        self.signing_secret = signing_secret
        self.org_keys = dict(org_keys) if org_keys is not None else {"acme": "acme-api-key"}
        self.verbose = verbose
        self.max_skew = 300
        self.retry_after = 2
        self.reject_event_ids: set[str] = set()
        self.requests: list[dict] = []
        self.events: list[dict] = []
        self.consent: dict[str, list[dict]] = {}
        self.erasures: dict[str, list[dict]] = {}
        self.erasure_page_size = 100
        self._port = port or 0
        self._fail_mode = None
        self._fail_next: list[str] = []
        self._hang_gen = 0
        self._stopping = False
        self._cond = threading.Condition(threading.RLock())
        self._conns: set = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.load_cert_chain(self.ca.cert_file, self.ca.key_file)

    # ---- properties and lifecycle

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"https://localhost:{self._port}"

    @property
    def ca_file(self) -> str:
        return self.ca.ca_file

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self) -> "ApiServer":
        self._stopping = False
        self._listen()
        return self

    def stop(self) -> None:
        """Stop listening, drop every connection and wake hanging handlers (returns at once)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._unlisten()

    def _listen(self) -> None:
        with self._cond:
            if self._httpd is not None:
                return
            httpd = _HTTPServer(("127.0.0.1", self._port), _Handler)
            httpd.api = self
            # The handshake happens on the first read, in the connection's own thread.
            httpd.socket = self._ctx.wrap_socket(httpd.socket, server_side=True,
                                                 do_handshake_on_connect=False)
            self._port = httpd.server_address[1]
            self._httpd = httpd
            self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"api-server-{self._port}", daemon=True)
            self._thread.start()

    def _unlisten(self) -> None:
        with self._cond:
            httpd, self._httpd = self._httpd, None
            conns, self._conns = list(self._conns), set()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        for c in conns:
            try:
                socket.socket.shutdown(c, socket.SHUT_RDWR)  # wakes a blocked reader with EOF
            except OSError:
                pass

    def _track(self, conn, add: bool) -> None:
        with self._cond:
            (self._conns.add if add else self._conns.discard)(conn)

    # ---- failure injection

    @property
    def fail_mode(self):
        return self._fail_mode

    @fail_mode.setter
    def fail_mode(self, mode) -> None:
        if mode not in MODES:
            raise ValueError(f"fail_mode must be one of {MODES}")
        with self._cond:
            old, self._fail_mode = self._fail_mode, mode
            if old != mode:
                self._hang_gen += 1
                self._cond.notify_all()
        if mode == "refuse" and old != "refuse":
            self._unlisten()
        elif old == "refuse" and mode != "refuse" and not self._stopping:
            self._listen()

    def refuse(self) -> None:
        """Close the listening socket (and open connections): clients get connection refused."""
        self.fail_mode = "refuse"

    def resume(self) -> None:
        """Back to normal, listening again on the same port."""
        self.fail_mode = None

    def fail_next(self, n: int, mode: str) -> None:
        """Apply mode ("500" | "429" | "hang" | "malformed") to the next n POST requests."""
        if mode not in MODES or mode in (None, "refuse"):
            raise ValueError(f"fail_next mode must be one of {MODES[2:]}")
        with self._cond:
            self._fail_next.extend([mode] * n)

    def release_hangs(self) -> None:
        """Drop the connections of requests currently hanging (without an answer)."""
        with self._cond:
            self._hang_gen += 1
            self._cond.notify_all()

    # ---- consent feed

    def add_consent_change(self, org: str, address: str, state: str, at=None, source="api") -> dict:
        """Append a change to org's feed. at: RFC 3339 string, unix seconds, datetime or None (now)."""
        if state not in ("granted", "revoked", "unsubscribed"):
            raise ValueError(f"bad consent state {state!r}")
        if at is None or isinstance(at, (int, float)):
            at = datetime.datetime.fromtimestamp(time.time() if at is None else at, datetime.timezone.utc)
        if isinstance(at, datetime.datetime):
            at = at.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        change = {"address": address, "state": state, "at": at, "source": source}
        with self._cond:
            self.consent.setdefault(org, []).append(change)
        return change

    # ---- erasure requests

    def add_erasure(self, org: str, address: str, requested_at=None, id: str | None = None) -> dict:  # noqa: A002
        """Queue an erasure request for org. requested_at: RFC 3339 string, unix seconds, datetime or None (now)."""
        if requested_at is None or isinstance(requested_at, (int, float)):
            requested_at = datetime.datetime.fromtimestamp(
                time.time() if requested_at is None else requested_at, datetime.timezone.utc)
        if isinstance(requested_at, datetime.datetime):
            requested_at = requested_at.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._cond:
            queue = self.erasures.setdefault(org, [])
            req = {"id": id or f"er_{org}_{len(queue) + 1}", "address": address, "requested_at": requested_at}
            queue.append(req)
        return req

    def erasure_gets(self, org: str | None = None) -> list[dict]:
        """Records of the GET /v1/erasures requests (of org, when given)."""
        with self._cond:
            return [r for r in self.requests if r["method"] == "GET" and r["path"] == _ERASURES and
                    (org is None or urllib.parse.parse_qs(r["query"]).get("org") == [org])]

    # ---- queries

    def distinct_event_ids(self) -> list[str]:
        """Distinct ids of the accepted events, in order of first arrival."""
        with self._cond:
            return list(dict.fromkeys(e.get("id") for e in self.events))

    def events_of_type(self, t: str) -> list[dict]:
        with self._cond:
            return [e for e in self.events if e.get("type") == t]

    def posts(self) -> list[dict]:
        """Records of the POST /v1/events requests."""
        with self._cond:
            return [r for r in self.requests if r["method"] == "POST" and r["path"] == "/v1/events"]

    def wait_for(self, predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def wait_events(self, n: int, timeout: float = 10.0) -> list[dict]:
        """Wait until at least n events were accepted; returns (a copy of) .events either way."""
        self.wait_for(lambda: len(self.events) >= n, timeout)
        with self._cond:
            return list(self.events)

    # ---- request handling (handler threads)

    def _check_signature(self, header: str | None, body: bytes) -> bool:
        if not header:
            return False
        parts = [p.strip().partition("=") for p in header.split(",")]
        ts = [v for k, _, v in parts if k == "t"]
        macs = [v.lower() for k, _, v in parts if k == "v1"]
        if len(ts) != 1 or not ts[0].isdigit() or not macs:
            return False
        if abs(int(ts[0]) - time.time()) > self.max_skew:
            return False
        want = hmac.new(self.signing_secret, ts[0].encode() + b"." + body, hashlib.sha256).hexdigest()
        return any(hmac.compare_digest(want, m) for m in macs)

    def _bearer_ok(self, headers, org) -> bool:
        key = self.org_keys.get(org) if isinstance(org, str) else None
        got = headers.get("Authorization") or ""
        return key is not None and hmac.compare_digest(got.encode(), f"Bearer {key}".encode())

    def _handle(self, h: _Handler, method: str) -> None:
        body = h.read_body()
        url = urllib.parse.urlsplit(h.path)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        rec = {"time": time.time(), "method": method, "path": url.path, "query": url.query,
               "headers": CIDict(h.headers.items()), "body": body, "json": parsed, "status": None,
               "signature_ok": self._check_signature(h.headers.get("Cllavio-Signature"), body),
               "idempotency_key": h.headers.get("Idempotency-Key"), "mode": None}
        is_post = method == "POST" and url.path == "/v1/events"
        with self._cond:
            self.requests.append(rec)
            mode = self._fail_next.pop(0) if is_post and self._fail_next else self._fail_mode
            gen = self._hang_gen
        rec["mode"] = mode

        def answer(status, obj=None, raw=None, ctype="application/json", extra=None):
            rec["status"] = status
            h.reply(status, raw if raw is not None else json.dumps(obj).encode(), ctype, extra)

        if mode == "hang":
            with self._cond:
                while not self._stopping and self._hang_gen == gen:
                    self._cond.wait(0.5)
            h.close_connection = True
            return
        if mode == "500":
            return answer(500, {"error": "injected failure"})
        if mode == "429":
            return answer(429, {"error": "slow down"}, extra={"Retry-After": str(self.retry_after)})
        if mode == "malformed":
            return answer(200, raw=b"<html>oops", ctype="text/html")
        if is_post:
            return self._post_events(rec, answer)
        m = _CONSENT_RE.match(url.path)
        if m and method == "GET":
            return self._get_consent(rec, urllib.parse.unquote(m.group(1)), answer)
        if url.path == _ERASURES and method == "GET":
            return self._get_erasures(rec, answer)
        if m or url.path in ("/v1/events", _ERASURES):
            return answer(405, {"error": "method not allowed"})
        return answer(404, {"error": "not found"})

    def _post_events(self, rec: dict, answer) -> None:
        if not rec["signature_ok"]:
            return answer(401, {"error": "bad signature"})
        doc = rec["json"]
        events = doc.get("events") if isinstance(doc, dict) else None
        if not isinstance(events, list) or not events or not all(isinstance(e, dict) for e in events):
            return answer(400, {"error": "body must be {\"events\": [objects...]}"})
        orgs = {e.get("org") for e in events}
        if len(orgs) > 1:
            return answer(400, {"error": "mixed orgs in one batch"})
        if not self._bearer_ok(rec["headers"], next(iter(orgs), None)):
            return answer(401, {"error": "bad api key"})
        if not rec["idempotency_key"]:
            return answer(400, {"error": "Idempotency-Key missing"})
        bad = [e.get("id") for e in events if e.get("id") in self.reject_event_ids]
        if bad:
            return answer(422, {"error": "bad event", "ids": bad})
        with self._cond:
            self.events.extend(events)
        return answer(200, {"accepted": len(events)})

    def _get_consent(self, rec: dict, org: str, answer) -> None:
        if not self._bearer_ok(rec["headers"], org):
            return answer(401, {"error": "bad api key"})
        cursor = (urllib.parse.parse_qs(rec["query"]).get("cursor") or [""])[0]
        if cursor and not cursor.isdigit():
            return answer(400, {"error": "bad cursor"})
        with self._cond:
            changes = list(self.consent.get(org, []))
        start = min(int(cursor or 0), len(changes))
        return answer(200, {"changes": changes[start:], "cursor": str(len(changes))})

    def _get_erasures(self, rec: dict, answer) -> None:
        query = urllib.parse.parse_qs(rec["query"])
        org = (query.get("org") or [None])[0]
        if not self._bearer_ok(rec["headers"], org):
            return answer(401, {"error": "bad api key"})
        cursor = (query.get("cursor") or [""])[0]
        if cursor and not cursor.isdigit():
            return answer(400, {"error": "bad cursor"})
        with self._cond:
            queue = list(self.erasures.get(org, []))
            size = max(1, int(self.erasure_page_size))
        start = min(int(cursor or 0), len(queue))
        page = queue[start:start + size]
        end = start + len(page)
        return answer(200, {"erasures": page, "cursor": str(end), "more": end < len(queue)})


# --------------------------------------------------------------------------- self-test

def _selftest() -> None:
    import http.client
    import shutil
    import tempfile
    import urllib.error
    import urllib.request

    tmp = tempfile.mkdtemp(prefix="cllavio-api-")
    try:
        with ApiServer(tmp) as api:
            ctx = ssl.create_default_context(cafile=api.ca_file)  # verifies the name "localhost"

            def post(events, secret=api.signing_secret, key="acme-api-key", timeout=5):
                body = json.dumps({"events": events}).encode()
                req = urllib.request.Request(api.url + "/v1/events", data=body, method="POST", headers={
                    "Authorization": f"Bearer {key}", "Content-Type": "application/json",
                    "Cllavio-Signature": sign(body, secret), "Idempotency-Key": os.urandom(8).hex()})
                try:
                    with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
                        return r.status, r.headers, r.read()
                except urllib.error.HTTPError as e:
                    return e.code, e.headers, e.read()

            ev = [{"id": "e1", "org": "acme", "type": "message.sent"},
                  {"id": "e2", "org": "acme", "type": "message.opened"}]
            assert post(ev)[::2] == (200, b'{"accepted": 2}')
            assert api.distinct_event_ids() == ["e1", "e2"] and len(api.events_of_type("message.sent")) == 1
            assert api.requests[-1]["signature_ok"] and api.requests[-1]["headers"]["idempotency-key"]
            assert post(ev, secret=b"wrong")[0] == 401 and not api.requests[-1]["signature_ok"]
            assert post(ev, key="nope")[0] == 401
            assert post(ev + [{"id": "g", "org": "globex"}])[0] == 400
            api.reject_event_ids = {"e2"}
            st, _, body = post(ev)
            assert st == 422 and json.loads(body)["ids"] == ["e2"]
            api.reject_event_ids = set()
            assert len(api.wait_events(2, timeout=1)) == 2

            # Keep-alive: two requests on one connection, then the consent feed.
            api.add_consent_change("acme", "a@x.example", "revoked", at=0)
            api.add_consent_change("acme", "b@x.example", "granted")
            conn = http.client.HTTPSConnection("localhost", api.port, context=ctx, timeout=5)
            auth = {"Authorization": "Bearer acme-api-key"}
            conn.request("GET", "/v1/orgs/acme/consent", headers=auth)
            doc = json.loads(conn.getresponse().read())
            assert [c["address"] for c in doc["changes"]] == ["a@x.example", "b@x.example"]
            assert doc["changes"][0]["at"] == "1970-01-01T00:00:00Z"
            sock = conn.sock
            conn.request("GET", f"/v1/orgs/acme/consent?cursor={doc['cursor']}", headers=auth)
            assert json.loads(conn.getresponse().read())["changes"] == [] and conn.sock is sock
            conn.request("GET", "/v1/orgs/acme/consent", headers={"Authorization": "Bearer x"})
            assert conn.getresponse().status == 401

            conn.close()

            # Erasure requests: paged, per org, Bearer auth; the signature is recorded.
            conn = http.client.HTTPSConnection("localhost", api.port, context=ctx, timeout=5)

            def get(path, headers=auth):
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                body = r.read()
                return r.status, (json.loads(body) if r.status == 200 else body)

            api.erasure_page_size = 2
            for a in ("e1@x.example", "e2@x.example", "e3@x.example"):
                api.add_erasure("acme", a, requested_at=0)
            st, doc = get("/v1/erasures?org=acme&cursor=",
                          dict(auth, **{"Cllavio-Signature": sign(b"", api.signing_secret)}))
            assert st == 200 and [e["address"] for e in doc["erasures"]] == ["e1@x.example", "e2@x.example"], doc
            assert doc["erasures"][0] == {"id": "er_acme_1", "address": "e1@x.example",
                                          "requested_at": "1970-01-01T00:00:00Z"}
            assert doc["cursor"] == "2" and doc["more"] is True
            assert api.requests[-1]["signature_ok"]
            st, doc = get(f"/v1/erasures?org=acme&cursor={doc['cursor']}")
            assert [e["address"] for e in doc["erasures"]] == ["e3@x.example"] and doc["more"] is False
            assert doc["cursor"] == "3" and not api.requests[-1]["signature_ok"]
            assert get("/v1/erasures?org=acme&cursor=3") == (200, {"erasures": [], "cursor": "3", "more": False})
            assert get("/v1/erasures?org=globex&cursor=")[0] == 401  # acme's key
            assert get("/v1/erasures?cursor=")[0] == 401
            assert get("/v1/erasures?org=acme&cursor=x")[0] == 400
            assert len(api.erasure_gets("acme")) == 4 and len(api.erasure_gets()) == 6
            conn.close()

            api.fail_mode = "429"
            st, hdrs, _ = post(ev)
            assert st == 429 and hdrs["Retry-After"] == "2"
            api.fail_mode = "malformed"
            assert post(ev)[::2] == (200, b"<html>oops")
            api.fail_mode = None
            api.fail_next(1, "500")
            assert post(ev)[0] == 500 and post(ev)[0] == 200

            port = api.port
            api.refuse()
            try:
                post(ev)
                raise AssertionError("connection not refused")
            except urllib.error.URLError as e:
                assert isinstance(e.reason, ConnectionRefusedError), e
            api.resume()
            assert api.port == port and post(ev)[0] == 200

            api.fail_mode = "hang"
            t0 = time.monotonic()
            try:
                post(ev, timeout=1)
                raise AssertionError("hanging request answered")
            except (TimeoutError, urllib.error.URLError):
                pass
            assert api.requests[-1]["status"] is None and time.monotonic() - t0 < 3
            t0 = time.monotonic()
            api.stop()
            assert time.monotonic() - t0 < 3, "stop() blocked by a hanging request"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("api_server self-test: ok")


if __name__ == "__main__":
    _selftest()
