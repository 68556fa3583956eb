"""A real Prometheus (Debian package `prometheus`) for the integration tests: it scrapes the
milter's metrics endpoint and answers PromQL through its HTTP API.

    p = Prometheus(base_dir, targets=["127.0.0.1:9899"])    # nothing runs yet
    p.start()                     # waits for /-/ready
    p.wait_up()                   # every target scraped successfully ("health": "up")
    p.query('sum by (action) (rate(cllavio_messages_total[30s]))')   # -> result list
    p.stop()                      # idempotent; removes its files

Files, inside base_dir/prometheus/ (removed by stop()):
    prometheus.yml     the private configuration (JSON, which YAML reads): scrape_interval
                       1s, one job "cllavio" with the given targets
    data/              --storage.tsdb.path
    prometheus.log     its stdout+stderr
It listens on 127.0.0.1 only, on a free port checked with procs.free_port().

query()/query_range() raise PromQLError when Prometheus answers status "error" (a parse
error, a bad range...); api() returns the raw JSON answer for tests that check the status
themselves. Python standard library only (urllib).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from procs import _find_exe, _read, _stop_proc, _tail, _wait_until, free_port

JOB = "cllavio"


class PromQLError(RuntimeError):
    """Prometheus answered status "error" (errorType and error in the message)."""

    def __init__(self, expr: str, answer: dict):
        self.expr, self.answer = expr, answer
        super().__init__(f"{answer.get('errorType')}: {answer.get('error')} (expr: {expr})")


class Prometheus:
    """Prometheus on 127.0.0.1:port scraping `targets` ("HOST:PORT" strings) every
    scrape_interval, its files in base_dir/prometheus (see the module's docstring)."""

    def __init__(self, base_dir: str, targets, *, scrape_interval: str = "1s", port: int | None = None,
                 metrics_path: str = "/metrics"):
        self.dir = os.path.join(base_dir, "prometheus")
        self.config_path = os.path.join(self.dir, "prometheus.yml")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.metrics_path = metrics_path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    # ------------------------------------------------------------------ configuration

    def config(self) -> dict:
        """The configuration file's document."""
        return {
            "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval,
                       "evaluation_interval": self.scrape_interval},
            "scrape_configs": [{"job_name": JOB, "metrics_path": self.metrics_path,
                                "static_configs": [{"targets": self.targets}]}],
        }

    # ------------------------------------------------------------------ start / stop

    def start(self, timeout: float = 30) -> "Prometheus":
        """Write the config, start Prometheus, return once /-/ready answers 200.
        On failure it is stopped and RuntimeError carries the tail of its log."""
        if self.proc is not None:
            return self
        os.makedirs(self.data_dir, mode=0o755, exist_ok=True)
        with open(self.config_path, "w") as f:
            json.dump(self.config(), f, indent=1)
        argv = [_find_exe("prometheus"), f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.data_dir}", f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h", "--log.level=info"]
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir)
        try:
            _wait_until(self._ready, timeout, f"Prometheus ready on {self.url}")
        except BaseException as e:
            log = _tail(self.log_path, 3000)
            self.stop()
            raise RuntimeError(f"Prometheus did not start: {e}\n--- prometheus.log ---\n{log}") from e
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.proc.returncode}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """Stop Prometheus (SIGTERM, then SIGKILL) and remove its files. Idempotent."""
        _stop_proc(self.proc)
        self.proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def log(self) -> str:
        return _read(self.log_path)

    # ------------------------------------------------------------------ HTTP API

    def api(self, path: str, params: dict | None = None, timeout: float = 10) -> dict:
        """GET /api/v1/<path>?params: the decoded JSON answer, errors included (Prometheus
        answers 400/422 with {"status": "error", ...})."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return json.loads(body)
            except ValueError:
                raise RuntimeError(f"GET {url}: HTTP {e.code}: {body[:500]!r}") from None

    def _data(self, expr: str, answer: dict) -> list:
        if answer.get("status") != "success":
            raise PromQLError(expr, answer)
        return answer["data"]["result"]

    def query(self, expr: str, at: float | None = None) -> list:
        """An instant query: the result list ([{"metric": {...}, "value": [t, "v"]}], or a
        scalar's [t, "v"]). PromQLError when Prometheus rejects it."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._data(expr, self.api("query", params))

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list:
        """A range query: [{"metric": {...}, "values": [[t, "v"], ...]}]."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        return self._data(expr, self.api("query_range", params))

    def values(self, expr: str, by: str | tuple[str, ...] = ()) -> dict:
        """An instant vector query as {label value (or tuple of them, for several labels): float}."""
        labels = (by,) if isinstance(by, str) else tuple(by)
        out = {}
        for s in self.query(expr):
            k = tuple(s["metric"].get(l, "") for l in labels)
            out[k[0] if len(k) == 1 else k] = float(s["value"][1])
        return out

    def wait_query(self, expr: str, pred=lambda r: bool(r), timeout: float = 20) -> list:
        """Poll query(expr) until pred(result) holds; returns the result. TimeoutError
        (with the last result) otherwise."""
        last = []

        def check():
            nonlocal last
            last = self.query(expr)
            return pred(last)
        try:
            _wait_until(check, timeout, f"Prometheus query {expr!r}", interval=0.2)
        except TimeoutError as e:
            raise TimeoutError(f"{e}; last result: {json.dumps(last)[:2000]}") from None
        return last

    def active_targets(self) -> list[dict]:
        """The active targets (api/v1/targets): labels, health, lastError, lastScrape..."""
        answer = self.api("targets", {"state": "active"})
        if answer.get("status") != "success":
            raise PromQLError("targets", answer)
        return answer["data"]["activeTargets"]

    def wait_up(self, timeout: float = 20) -> list[dict]:
        """Wait until every configured target has been scraped with health "up"."""
        last = []

        def up():
            nonlocal last
            last = self.active_targets()
            return len(last) == len(self.targets) and all(t["health"] == "up" for t in last)
        try:
            _wait_until(up, timeout, "every Prometheus target up", interval=0.2)
        except TimeoutError as e:
            raise TimeoutError(f"{e}; targets: {json.dumps(last)[:2000]}") from None
        return last

    def wait_scrapes(self, n: int = 2, timeout: float = 20) -> None:
        """Wait until every target has been scraped n more times from now (the
        `up` series gets one sample per scrape)."""
        def count():
            r = self.query(f'count_over_time(up{{job="{JOB}"}}[1h])')
            return min((int(float(s["value"][1])) for s in r), default=0)
        first = count()
        _wait_until(lambda: count() >= first + n, timeout, f"{n} more scrapes", interval=0.2)


def finite(sample: dict) -> bool:
    """An instant-vector sample's value is a finite number (not NaN, not +-Inf)."""
    return math.isfinite(float(sample["value"][1]))
