"""Pieces of the browser test that are not about the browser: the local web server that serves
the documents (with their charset), the proxy that records and refuses everything else, and a
PNG comparison that says where two screenshots start to differ. Standard library only."""

import http.server
import socketserver
import threading
import zlib

class Pages:
    def __init__(self):
        self.pages: dict[str, tuple[bytes, str]] = {}

    def handler(self):
        pages = self.pages

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                page = pages.get(self.path)
                if page is None:
                    self.send_error(404)
                    return
                body, ctype = page
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        return H


class RefusingProxy(socketserver.ThreadingTCPServer):
    """Records the first line of every request Chromium sends to its proxy (CONNECT host:443,
    GET http://...) and answers 403: nothing is ever fetched."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.lock = threading.Lock()
        self.seen: list[str] = []
        outer = self

        class H(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        chunk = self.request.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    line = data.split(b"\r\n", 1)[0].decode("latin-1")
                    with outer.lock:
                        outer.seen.append(line)
                    self.request.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

        super().__init__(("127.0.0.1", 0), H)


def serve(server) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return t


def png_rows(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the filtered scanlines of a non-interlaced PNG (enough to find where
    two screenshots start to differ)."""
    pos, idat = 8, b""
    width = height = 0
    bpp = 4
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        kind = png[pos + 4:pos + 8]
        data = png[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height = int.from_bytes(data[0:4], "big"), int.from_bytes(data[4:8], "big")
            bpp = {2: 3, 6: 4, 0: 1, 4: 2}.get(data[9], 4) * data[8] // 8
        elif kind == b"IDAT":
            idat += data
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = 1 + width * bpp
    return width, height, [raw[i:i + stride] for i in range(0, len(raw), stride)]


def screenshot_difference(a: bytes, b: bytes) -> str:
    """"" when the two PNGs hold the same pixels, else where they differ."""
    if a == b:
        return ""
    wa, ha, ra = png_rows(a)
    wb, hb, rb = png_rows(b)
    if (wa, ha) != (wb, hb):
        return f"screenshot {wa}x{ha} vs {wb}x{hb}"
    # A deterministic encoder gives the same filtered row for the same pixels (and the
    # same row above): the first differing row is where the pixels start to differ.
    rows = [y for y in range(ha) if ra[y] != rb[y]]
    if not rows:
        return ""
    return f"pixels differ from row {rows[0]} ({len(rows)} of {ha} rows)"
