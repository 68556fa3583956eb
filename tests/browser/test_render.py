#!/usr/bin/env python3
"""Browser test: tracking does not change what the reader sees.

Every text/html part that `cllavioctl rewrite` changes, in every corpus message (eml/) and in
every corpus template (html-templates/, each wrapped as a one-part text/html utf-8 message), is
rendered before and after tracking in headless Chromium, and the two renderings must agree:

  - the page size, laid out in an 800 x 1 px viewport (so scrollHeight is the content's own
    height, as a mail client sizing its frame to the message sees it: a page shorter than a
    window would hide a few pixels added at its bottom);
  - the screenshots, pixel for pixel: the 800 px wide viewport made as tall as the page;
  - the links the browser sees (document.links): same count, same order; a tracked link's
    click token (decoded with docs/tokens.md's reference verifier) holds a destination that
    `new URL(dest).href` in the page resolves to exactly the original link's a.href; every
    other link is unchanged;
  - the page requests (Chromium's performance log) are the same, plus the open pixel: a browser
    asks for the pixel where it now sits.

Nothing reaches the network: the documents come from a local HTTP server on 127.0.0.1 (with
the part's charset in Content-Type), and Chromium sends every other request to a local proxy
that records what was asked and refuses it (403), with host resolution mapped to nothing.

The corpus is ../shared/corpus next to the repository or $CLLAVIO_CORPUS; without it the test
skips (exit 77). Needs chromium, chromium-driver and python3-selenium (scripts/deps.sh).
On failure the differing documents' PNGs (and HTML) are kept in a temp folder it names.

    python3 tests/browser/test_render.py [-v] [-k SUBSTRING]
"""

import base64
import concurrent.futures
import email
import email.policy
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from local_web import Pages, RefusingProxy, screenshot_difference, serve  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CTL = os.environ.get("CLLAVIO_CTL", os.path.join(REPO, "build", "cli", "cllavioctl"))
CORPUS = os.environ.get("CLLAVIO_CORPUS", os.path.join(os.path.dirname(REPO), "shared", "corpus"))

DOMAIN = "t.acme.example"
KEY_ID = "browser"
SECRET = b"browser-test-key-not-for-production-0123"
MESSAGE_ID = "000661600b8284cc"
RCPT = "bob@example.net"
WIDTH, MEASURE_HEIGHT, MAX_HEIGHT = 800, 1, 16384
PAGE_TIMEOUT_S = 30
DEADLINE_S = 720  # the whole run; ctest's TIMEOUT is above it
SKIP = 77         # ctest SKIP_RETURN_CODE

# Documents that cannot render deterministically, by name, with the reason. (None so far.)
EXCLUDED: dict[str, str] = {}


def log(*a):
    print(*a, flush=True)


def import_selenium():
    try:
        import selenium  # noqa: F401
    except ImportError:
        # Debian's python3-selenium lives in the system Python; a pyenv/venv python3 first on
        # PATH does not see it.
        system = "/usr/bin/python3"
        if os.path.exists(system) and os.path.realpath(sys.executable) != os.path.realpath(system) \
                and not os.environ.get("CLLAVIO_BROWSER_REEXEC"):
            os.environ["CLLAVIO_BROWSER_REEXEC"] = "1"
            os.execv(system, [system, os.path.abspath(__file__)] + sys.argv[1:])
        log("browser test: python3-selenium is not installed (run scripts/deps.sh)")
        sys.exit(1)


# ---- configuration and the rewrite ------------------------------------------------------

def write_config(d: str) -> str:
    os.makedirs(os.path.join(d, "orgs.d"))
    with open(os.path.join(d, "cllavio.toml"), "w") as f:
        f.write('[orgs]\ndir = "orgs.d"\n[store]\npath = "store"\n[secrets]\nfile = "secrets.toml"\n')
    with open(os.path.join(d, "orgs.d", "acme.toml"), "w") as f:
        f.write(f'id = "acme"\ndomains = ["acme.example"]\n[tracking]\nopens = true\nclicks = true\n'
                f'consent = "implied"\ndomain = "{DOMAIN}"\n')
    path = os.path.join(d, "secrets.toml")
    with open(path, "w") as f:
        f.write(f'[[tracking_key]]\nid = "{KEY_ID}"\nsecret = "{base64.b64encode(SECRET).decode()}"\n')
    os.chmod(path, 0o600)
    return os.path.join(d, "cllavio.toml")


def rewrite(conf: str, raw: bytes, report: str) -> tuple[bytes, dict]:
    r = subprocess.run([CTL, "-c", conf, "rewrite", "--org", "acme", "--rcpt", RCPT, "--message-id", MESSAGE_ID,
                        "--report", report], input=raw, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"cllavioctl rewrite exited {r.returncode}: {r.stderr.decode(errors='replace')}")
    with open(report) as f:
        return r.stdout, json.load(f)


def html_parts(raw: bytes) -> list[tuple[str | None, bytes]]:
    """(charset, decoded content) of every text/html leaf, in document order."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    out = []
    for part in msg.walk():
        if not part.is_multipart() and part.get_content_type() == "text/html":
            out.append((part.get_content_charset(), part.get_payload(decode=True) or b""))
    return out


def token_verifier():
    doc = open(os.path.join(REPO, "docs", "tokens.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    ns: dict = {}
    exec(blocks[0], ns)  # noqa: S102 - the reference verifier of our own documentation
    return lambda token: ns["verify"](token, {KEY_ID: SECRET})


def wrap_template(name: str, html: bytes) -> bytes:
    nl = b"\r\n" if b"\r\n" in html else b"\n"
    header = nl.join([b"From: news@acme.example", b"To: " + RCPT.encode(),
                      b"Subject: " + os.path.basename(name).encode(), b"MIME-Version: 1.0",
                      b"Content-Type: text/html; charset=utf-8", b"Content-Transfer-Encoding: 8bit"])
    return header + nl + nl + html


def corpus_files(sub: str) -> list[str]:
    top = os.path.join(CORPUS, sub)
    return sorted(os.path.join(root, f) for root, _, files in os.walk(top) for f in files if not f.startswith("_"))


class Doc:
    def __init__(self, name, charset, original, tracked):
        self.name, self.charset, self.original, self.tracked = name, charset, original, tracked


def collect(conf: str, tmp: str, only: str | None) -> tuple[list[Doc], list[str], dict]:
    docs, problems = [], []
    stats = {"messages": 0, "tracked_messages": 0, "templates": 0}
    sources = []
    for sub in ("eml", "html-templates"):
        for path in corpus_files(sub):
            name = sub + "/" + os.path.relpath(path, os.path.join(CORPUS, sub))
            if only and only not in name:
                continue
            data = open(path, "rb").read()
            if sub == "html-templates":
                stats["templates"] += 1
                data = wrap_template(name, data)
            else:
                stats["messages"] += 1
            sources.append((name, data))
    # Two at a time (the machine has two CPUs); results in corpus order.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda k: rewrite(conf, sources[k][1], os.path.join(tmp, f"report{k}.json")),
                                range(len(sources))))
    for (name, data), (out, report) in zip(sources, results):
        if not report["changed"]:
            continue
        stats["tracked_messages"] += 1
        before, after = html_parts(data), html_parts(out)
        if len(before) != len(after):
            problems.append(f"{name}: {len(before)} text/html parts before tracking, {len(after)} after")
            continue
        changed = [(i, b, a) for i, (b, a) in enumerate(zip(before, after)) if b[1] != a[1]]
        if len(changed) != report["parts_changed"]:
            problems.append(f"{name}: {len(changed)} text/html parts differ, the report says {report['parts_changed']}")
        for i, (charset, orig), (_, tracked) in changed:
            docs.append(Doc(f"{name}#{i}", charset, orig, tracked))
    return docs, problems, stats


# ---- the browser ------------------------------------------------------------------------

def start_browser(profile: str, proxy_port: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    binary = "/usr/lib/chromium/chromium"
    opts.binary_location = binary if os.path.exists(binary) else shutil.which("chromium") or "chromium"
    for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={profile}", f"--proxy-server=http://127.0.0.1:{proxy_port}",
              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
              "--hide-scrollbars", "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio",
              "--no-default-browser-check", "--force-device-scale-factor=1", "--font-render-hinting=none",
              "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
              f"--window-size={WIDTH},600"]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # the page's requests
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    driver.set_script_timeout(PAGE_TIMEOUT_S)
    return driver


# No caret, no animation or transition: the two renderings are taken at different moments.
STILL = {"source": "document.addEventListener('DOMContentLoaded', () => {"
                   " const s = document.createElement('style');"
                   " s.textContent = '*,*::before,*::after{animation:none!important;transition:none!important;"
                   "caret-color:transparent!important}';"
                   " (document.head || document.documentElement).appendChild(s); });"}


class Rendering:
    def __init__(self, png, width, height, links, requests):
        self.png, self.width, self.height, self.links, self.requests = png, width, height, links, requests


def page_requests(driver, own: str) -> set[str]:
    """The URLs the page asked for since the last call (from Chromium's performance log),
    but for the local server's (the page itself, the favicon Chromium asks once)."""
    out = set()
    for entry in driver.get_log("performance"):
        m = json.loads(entry["message"])["message"]
        if m["method"] == "Network.requestWillBeSent":
            u = m["params"]["request"]["url"]
            if not u.startswith((own, "data:")):
                out.add(u)
    return out


def render(driver, url: str) -> Rendering:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": MEASURE_HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    own = url[:url.index("/", len("http://"))]
    page_requests(driver, own)
    driver.get(url)  # returns after the load event: every image loaded or failed
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "document.fonts.ready.then(() => requestAnimationFrame(() => requestAnimationFrame(() => done())));")
    width, height = driver.execute_script(
        "const e = document.scrollingElement || document.documentElement; return [e.scrollWidth, e.scrollHeight];")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": max(1, min(height, MAX_HEIGHT)), "deviceScaleFactor": 1,
                            "mobile": False})
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done()));")
    png = base64.b64decode(driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})["data"])
    links = driver.execute_script("return Array.from(document.links, a => a.href);")
    return Rendering(png, width, height, links, page_requests(driver, own))


# ---- the run ------------------------------------------------------------------------------

def main() -> int:
    args = sys.argv[1:]
    verbose = "-v" in args
    only = args[args.index("-k") + 1] if "-k" in args else None
    if not os.path.isdir(os.path.join(CORPUS, "eml")) or not os.path.isdir(os.path.join(CORPUS, "html-templates")):
        log(f"browser test: skipped, no corpus at {CORPUS}")
        return SKIP
    import_selenium()
    if not os.path.exists(CTL):
        log(f"browser test: no cllavioctl at {CTL} (build first, or set CLLAVIO_CTL)")
        return 1
    started = time.monotonic()
    verify = token_verifier()
    tmp = tempfile.mkdtemp(prefix="cllavio-browser-")
    driver = web = proxy = None
    failed: list[tuple[Doc, str, Rendering | None, Rendering | None]] = []
    try:
        conf = write_config(os.path.join(tmp, "config"))
        docs, problems, stats = collect(conf, tmp, only)
        log(f"browser test: {stats['messages']} corpus messages and {stats['templates']} templates rewritten, "
            f"{stats['tracked_messages']} tracked, {len(docs)} text/html documents to compare "
            f"({time.monotonic() - started:.0f}s)")
        for p in problems:
            log("FAIL", p)

        pages = Pages()
        web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), pages.handler())
        web.daemon_threads = True
        proxy = RefusingProxy()
        serve(web)
        serve(proxy)
        base = f"http://127.0.0.1:{web.server_address[1]}"
        driver = start_browser(os.path.join(tmp, "profile"), proxy.server_address[1])
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", STILL)

        compared = links_checked = tracked_links = pixels_seen = excluded = 0
        for n, doc in enumerate(docs):
            if time.monotonic() - started > DEADLINE_S:
                failed.append((doc, f"deadline of {DEADLINE_S}s reached: {len(docs) - n} documents not compared",
                               None, None))
                break
            if doc.name in EXCLUDED:
                excluded += 1
                log(f"excluded {doc.name}: {EXCLUDED[doc.name]}")
                continue
            # Both versions at the same address: relative links resolve alike.
            ctype = "text/html" + (f"; charset={doc.charset}" if doc.charset else "")
            path = f"/{n}/message.html"
            why: list[str] = []
            try:
                pages.pages[path] = (doc.original, ctype)
                a = render(driver, base + path)
                pages.pages[path] = (doc.tracked, ctype)
                b = render(driver, base + path)
                # Tracked links: the token's destination, resolved in the tracked page.
                dests = {}
                for i, href in enumerate(b.links):
                    if href.startswith(f"https://{DOMAIN}/c/"):
                        try:
                            dests[i] = verify(href[len(f"https://{DOMAIN}/c/"):])["url"]
                        except Exception as e:  # noqa: BLE001 - reported as a failure
                            why.append(f"link {i}: token does not verify: {e}")
                resolved = driver.execute_script(
                    "return arguments[0].map(u => { try { return new URL(u).href; } catch (e) { return 'ERROR ' + e; } });",
                    list(dests.values()))
                resolved = dict(zip(dests.keys(), resolved))
            except Exception as e:  # noqa: BLE001 - one document's trouble is reported, the run goes on
                first = str(e).splitlines()[0] if str(e) else ""
                failed.append((doc, f"rendering failed: {type(e).__name__}: {first}", None, None))
                log(f"FAIL {doc.name}: rendering failed: {type(e).__name__}: {first}")
                continue
            finally:
                pages.pages.pop(path, None)
            compared += 1
            if (a.width, a.height) != (b.width, b.height):
                why.append(f"page {a.width}x{a.height} vs {b.width}x{b.height}")
            if d := screenshot_difference(a.png, b.png):
                why.append(d)
            if len(a.links) != len(b.links):
                why.append(f"{len(a.links)} links vs {len(b.links)}")
            for i, (ho, ht) in enumerate(zip(a.links, b.links)):
                links_checked += 1
                if i in resolved:
                    tracked_links += 1
                    if resolved[i] != ho:
                        why.append(f"link {i}: token resolves to {resolved[i]!r}, the original is {ho!r}")
                elif ho != ht:
                    why.append(f"link {i}: {ht!r}, the original is {ho!r}")
            pixels = {u for u in b.requests if u.startswith(f"https://{DOMAIN}/o/")}
            if f"https://{DOMAIN}/o/".encode() in doc.tracked:
                if pixels:
                    pixels_seen += 1
                else:
                    why.append("the open pixel was not requested")
            if extra := sorted(b.requests - a.requests - pixels):
                why.append(f"requests the original does not make: {extra[:3]}")
            if missing := sorted(a.requests - b.requests):
                why.append(f"requests the tracked version does not make: {missing[:3]}")
            if why:
                failed.append((doc, "; ".join(why), a, b))
                log(f"DIFF {doc.name}: {'; '.join(why)}")
            elif verbose:
                log(f"ok   {doc.name} ({a.height}px, {len(a.links)} links)")

        elapsed = time.monotonic() - started
        log(f"browser test: {compared} documents compared ({excluded} excluded), {links_checked} links checked "
            f"({tracked_links} tracked, each resolving to the original), {pixels_seen} open pixels requested and "
            f"refused, {len(proxy.seen)} requests refused by the proxy, {elapsed:.0f}s")
        if failed or problems:
            keep = tempfile.mkdtemp(prefix="cllavio-browser-failed-")
            with open(os.path.join(keep, "index.txt"), "w") as idx:
                for k, (doc, why, a, b) in enumerate(failed):
                    stem = f"{k:03d}"
                    idx.write(f"{stem} {doc.name}: {why}\n")
                    with open(os.path.join(keep, stem + "-original.html"), "wb") as f:
                        f.write(doc.original)
                    with open(os.path.join(keep, stem + "-tracked.html"), "wb") as f:
                        f.write(doc.tracked)
                    for tag, r in (("original", a), ("tracked", b)):
                        if r is not None:
                            with open(os.path.join(keep, f"{stem}-{tag}.png"), "wb") as f:
                                f.write(r.png)
            log(f"browser test: {len(failed)} of {len(docs)} documents differ (details above):")
            for doc, _, _, _ in failed:
                log(f"  {doc.name}")
            log(f"browser test: screenshots and HTML of the differing documents kept in {keep}")
        log(f"browser: {compared - sum(1 for f in failed if f[2] is not None)} passed, "
            f"{len(failed) + len(problems)} failed")
        return 1 if failed or problems else 0
    finally:
        if driver is not None:
            try:
                driver.quit()
            except Exception:  # noqa: BLE001
                pass
        for s in (web, proxy):
            if s is not None:
                s.shutdown()
                s.server_close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
