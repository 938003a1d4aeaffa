"""A hostile HTTP server on 127.0.0.1 for the corpus: CSVs it is given, and every way a download can go wrong
(404, never answering, an HTML page, an empty or binary body, an endless body, a slow drip, a gzip bomb).

Every hostile answer is bounded in time and bytes, so the server always stops by itself.
"""

from __future__ import annotations

import http.server
import os
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

HANG_S = 60.0  # "never answers": longer than any download timeout of the test stack, then it gives up
DRIP_S = 120.0  # the slow drip sends one byte a second for at most this long
ENDLESS_BYTES = 1024 * 1024 * 1024  # the endless body stops after 1 GiB (the download limit is 50 MiB)
BOMB_BYTES = 1024 * 1024 * 1024  # what the gzip bomb inflates to


def gzip_bomb(size: int = BOMB_BYTES) -> bytes:
    """gzip of a `size`-byte CSV of one repeated row, about 1/500 of its inflated size: one gzip member of
    ~1 MB of rows, repeated (a gzip file may hold many members; every reader inflates them all)."""
    rows = b"2000-01-01,1\n" * 80_000

    def member(data: bytes) -> bytes:
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        return comp.compress(data) + comp.flush()

    return member(b"date,walk\n") + member(rows) * (size // len(rows))


class Hostile(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    bomb: bytes = b""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        name = self.path.lstrip("/").split("?", 1)[0]
        try:
            if name in self.files:
                self._answer(200, self.files[name], "text/csv")
            elif name == "hang":
                time.sleep(HANG_S)
            elif name == "html":
                self._answer(200, b"<!DOCTYPE html><html><head><title>Login</title></head><body><form>"
                             b"<input name=user></form></body></html>\n" * 20, "text/html; charset=utf-8")
            elif name == "empty":
                self._answer(200, b"", "text/csv")
            elif name == "binary":
                self._answer(200, b"\x89PNG\r\n\x1a\n\x00\x00" + os.urandom(4096), "application/octet-stream")
            elif name == "endless":
                self._stream(b"2000-01-01,1\n" * 5000, ENDLESS_BYTES, 0.0)
            elif name == "drip":
                self._stream(b"7", int(DRIP_S), 1.0, head=b"date,walk\n")
            elif name == "bomb":
                self._answer(200, self.bomb, "text/csv", {"Content-Encoding": "gzip"})
            else:
                self._answer(404, b"not found", "text/plain")
        except OSError:
            pass  # the client gave up: that is the point of most of these

    def _answer(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, chunk: bytes, total: int, pause: float, head: bytes = b"date,walk\n") -> None:
        """No Content-Length: the body ends when the connection closes (or `total` bytes were sent)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(head)
        sent = 0
        while sent < total:
            self.wfile.write(chunk)
            self.wfile.flush()
            sent += len(chunk)
            if pause:
                time.sleep(pause)
        self.close_connection = True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gives up resets the connection: expected here, not worth a traceback


@contextmanager
def hostile_server(files: dict[str, bytes]) -> Iterator[str]:
    """Serve `files` (name → bytes) and the hostile routes on 127.0.0.1; yields the base URL."""
    handler = type("Handler", (Hostile,), {"files": files, "bomb": gzip_bomb()})
    httpd = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
