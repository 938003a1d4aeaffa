"""Every ingestion test runs under `net_guard`: a connection or name lookup for anything outside
127.0.0.0/8 fails the test (recorded, raised, and asserted again at teardown), so an SSRF test can never
send traffic to the addresses it is about, and no test resolves a real DNS name."""

from __future__ import annotations

import http.server
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.plugins.ingestion_net import BOMB_OUTPUT_BYTES, CSV, NetGuard


@pytest.fixture(autouse=True)
def net_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetGuard]:
    guard = NetGuard()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_create, real_getaddrinfo = socket.create_connection, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        guard.check("connect", address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guard.check("connect_ex", address)
        return real_connect_ex(self, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        guard.check("create_connection", address, record=False)  # its socket.connect records
        return real_create(address, *args, **kwargs)

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        guard.check("getaddrinfo", (host, port), record=False)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield guard
    assert not guard.violations, f"traffic outside 127.0.0.0/8 was attempted: {guard.violations}"


_HOSTILE_FOR_S = 60  # a hostile handler gives up after this, so no test thread outlives a run by much


def _gzip_bomb() -> bytes:
    import gzip

    return gzip.compress(b"0" * BOMB_OUTPUT_BYTES, compresslevel=6)


class _Hostile(http.server.BaseHTTPRequestHandler):
    """Good and hostile answers by path; see the routes in do_GET."""

    protocol_version = "HTTP/1.1"
    bomb = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path, _, query = self.path.partition("?")
        try:
            route = getattr(self, "route_" + path.strip("/").replace("/", "_").replace(".", "_").replace("-", "_"),
                            None)
            if route is None:
                self._send(404, b"not found")
            else:
                route(urllib.parse.unquote(query.removeprefix("to=")))
        except OSError:  # the client hung up: what the endless answers wait for
            pass

    def _send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _forever(self, write: Callable[[], None], every: float) -> None:
        end = time.monotonic() + _HOSTILE_FOR_S
        while time.monotonic() < end:
            write()
            self.wfile.flush()
            time.sleep(every)
        self.close_connection = True

    def route_data_csv(self, _: str) -> None:
        self._send(200, CSV, Content_Type="text/csv")

    def route_big_csv(self, _: str) -> None:  # no Content-Length: the cap must hold while streaming
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"x" * 5000)
        self.close_connection = True

    def route_moved(self, _: str) -> None:
        self._send(302, b"", Location="/data.csv")

    def route_redirect(self, to: str) -> None:
        self._send(302, b"", Location=to)

    def route_loop(self, _: str) -> None:
        self._send(302, b"", Location="/loop")

    def route_status_404(self, _: str) -> None:
        self._send(404, b"no such file")

    def route_status_500(self, _: str) -> None:
        self._send(500, b"oops")

    def route_html(self, _: str) -> None:
        self._send(200, b"<!DOCTYPE html>\n<html><body><form>Please log in</form></body></html>",
                   Content_Type="text/html; charset=utf-8")

    def route_empty(self, _: str) -> None:
        self._send(200, b"", Content_Type="text/csv")

    def route_binary(self, _: str) -> None:
        self._send(200, bytes(range(256)) * 8, Content_Type="application/octet-stream")

    def route_gzip(self, _: str) -> None:
        self._send(200, self.bomb, Content_Type="text/csv", Content_Encoding="gzip")

    def route_bomb_csv_gz(self, _: str) -> None:
        self._send(200, self.bomb, Content_Type="application/gzip")

    def route_huge_length(self, _: str) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10**12))
        self.end_headers()
        self.close_connection = True

    def route_many_headers(self, _: str) -> None:
        self.send_response(200)
        for i in range(500):
            self.send_header(f"X-Header-{i}", "x")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_not_http(self, _: str) -> None:
        self.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        self.close_connection = True

    def route_endless(self, _: str) -> None:  # chunked, never a last chunk
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"1,2\n" * 4096
        self._forever(lambda: self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk)), 0.001)

    def route_drip(self, _: str) -> None:  # one byte at a time, forever
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self._forever(lambda: self.wfile.write(b"1"), 0.05)

    def route_drip_headers(self, _: str) -> None:  # never finishes its headers
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        self._forever(lambda: self.wfile.write(b"z"), 0.05)

    def log_message(self, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up on endless answers is what these tests do


@pytest.fixture(scope="session")
def hostile_server() -> Iterator[str]:
    """`127.0.0.1:PORT` of a local server with good and hostile answers (see `_Hostile`)."""
    _Hostile.bomb = _gzip_bomb()
    httpd = _QuietServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def silent_server() -> Iterator[str]:
    """`127.0.0.1:PORT` where connections are accepted (by the kernel's backlog) and never answered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"127.0.0.1:{listener.getsockname()[1]}"
