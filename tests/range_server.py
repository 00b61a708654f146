"""A loopback HTTP server for the remote reader's tests and benchmark: serves a folder with
byte ranges (``Range: bytes=a-b``, ``bytes=a-``; answers 206 with ``Content-Range``), counts
the body bytes it sends, and can misbehave on purpose (Python's ``http.server`` serves no
ranges).

- ``cut[path] = n``: after ``n`` body bytes of ``path`` have been sent (over all requests),
  every response for it promises its full length and stops there (the connection is closed
  mid-body), as a server that dies mid-file does;
- ``short.add(path)``: answers a range with a well-formed 206 carrying half the bytes asked;
- ``tamper[path] = data``: serves ``data`` instead of the file's bytes;
- ``cut_once.add(path)``: the next response for ``path`` stops mid-body, later ones are whole;
- ``hidden.add(path)``: answers 404 for ``path``;
- ``delay[path] = seconds``: waits that long before answering (a server that hangs).
"""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # concurrent range requests: no connection left waiting for a SYN retry


class RangeServer:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.lock = threading.Lock()
        self.bytes_sent = 0
        self.sent: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.cut: dict[str, int] = {}
        self.short: set[str] = set()
        self.tamper: dict[str, bytes] = {}
        self.cut_once: set[str] = set()
        self.hidden: set[str] = set()
        self.delay: dict[str, float] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body without a delayed-ACK stall
            wbufsize = -1  # ... and sent together, flushed once

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def _serve(self, body: bool):
                rel = unquote(self.path.split("?", 1)[0]).lstrip("/")
                with server.lock:
                    server.requests.append((rel, self.headers.get("Range")))
                if rel in server.delay:
                    time.sleep(server.delay[rel])
                data = server.tamper.get(rel)
                file = (server.root / rel).resolve()
                if data is None and (not file.is_relative_to(server.root) or not file.is_file()
                                     or rel in server.hidden):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                size = len(data) if data is not None else file.stat().st_size
                status, a, b = 200, 0, size
                rng = self.headers.get("Range")
                if rng:
                    m = _RANGE.match(rng.strip())
                    if m is None or int(m.group(1)) >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    a = int(m.group(1))
                    b = min(size, int(m.group(2)) + 1) if m.group(2) else size
                    status = 206
                    if rel in server.short:
                        b = a + max(0, (b - a) // 2)
                if data is not None:
                    payload = data[a:b]
                else:  # only the bytes asked are read
                    with open(file, "rb") as fh:
                        fh.seek(a)
                        payload = fh.read(b - a)
                allowed = len(payload)
                with server.lock:
                    if rel in server.cut:
                        allowed = max(0, min(allowed, server.cut[rel] - server.sent.get(rel, 0)))
                    if rel in server.cut_once and body:
                        server.cut_once.discard(rel)
                        allowed = len(payload) // 2
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {a}-{b - 1}/{size}")
                self.end_headers()
                if not body:
                    return
                sent = payload[:allowed]
                try:
                    self.wfile.write(sent)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                finally:
                    with server.lock:
                        server.bytes_sent += len(sent)
                        server.sent[rel] = server.sent.get(rel, 0) + len(sent)
                if allowed < len(payload):
                    self.close_connection = True

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def reset_counts(self) -> None:
        with self.lock:
            self.bytes_sent = 0
            self.sent.clear()
            self.requests.clear()

    def __enter__(self) -> RangeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
