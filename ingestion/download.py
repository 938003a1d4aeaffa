"""Fetch a CSV over http(s) for a user, safely: the SSRF guard (`ingestion.url_guard`) on every hop, a
size cap, and time limits that hold against servers that never answer or drip bytes forever.

Time: every connect and every read waits at most `timeout` seconds, and the whole download (all redirects,
headers and body) is cut at `total_timeout` (default 4 × `timeout`) by a watchdog that shuts the socket
down, so even a server sending one byte a second cannot hold a worker longer than that.
Content: the body is taken as sent (no decompression anywhere, so no decompression bomb); a server that
answers with a Content-Encoding other than identity is refused.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import socket
import ssl
import threading
import time
from urllib.parse import urljoin

from ingestion.url_guard import Allowlist, DownloadError, Resolver, Target, check_url, system_resolver

__all__ = ["Allowlist", "DownloadError", "MAX_REDIRECTS", "check_url", "download", "system_resolver"]

MAX_REDIRECTS = 3
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 * 1024


class _Watchdog:
    """Shuts the current connection's socket down at the deadline, which wakes any blocked read."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(0.001, self.deadline - time.monotonic())

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                self._shutdown()

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            # The plain socket call, also for TLS sockets: no TLS state is touched from this thread.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()
        self.watch(None)


def _open(target: Target, timeout: float, watchdog: _Watchdog) -> socket.socket:
    sock = socket.create_connection((target.ip, target.port), min(timeout, watchdog.remaining()))
    watchdog.watch(sock)
    if target.scheme == "https":  # SNI and certificate checks against the URL's host name, not the IP
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
        watchdog.watch(sock)
    return sock


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to the checked address only, under the watchdog."""

    def __init__(self, target: Target, timeout: float, watchdog: _Watchdog) -> None:
        super().__init__(target.ip, target.port, timeout=timeout)
        self._target, self._watchdog = target, watchdog

    def connect(self) -> None:
        self.sock = _open(self._target, self.timeout, self._watchdog)


def download(url: str, allowlist: Allowlist, max_bytes: int, timeout: float,
             resolve: Resolver = system_resolver, total_timeout: float | None = None) -> bytes:
    """GET `url` → body bytes. Raises DownloadError for every failure (with the reason)."""
    total = timeout * 4 if total_timeout is None else total_timeout
    watchdog = _Watchdog(total)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            target = check_url(url, allowlist, _bounded(resolve, watchdog, url, total))
            try:
                location = _get(url, target, max_bytes, timeout, watchdog)
            except DownloadError:
                raise
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if watchdog.expired:
                    raise _too_slow(url, total) from None
                raise DownloadError(f"downloading {url} failed: {_plain(exc, target, timeout)}") from None
            if watchdog.expired:  # the shutdown can look like a normal end of the body
                raise _too_slow(url, total)
            if isinstance(location, bytes):
                return location
            url = location
        raise DownloadError(f"downloading failed: the server redirected more than {MAX_REDIRECTS} times "
                            f"(a redirect loop?), last to {url}")
    finally:
        watchdog.cancel()


def _bounded(resolve: Resolver, watchdog: _Watchdog, url: str, total: float) -> Resolver:
    """`resolve`, but given up at the deadline (a lookup cannot be interrupted; its thread ends on its own)."""
    def bounded(host: str, port: int) -> list[str]:
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="resolve")
        try:
            return pool.submit(resolve, host, port).result(timeout=watchdog.remaining())
        except concurrent.futures.TimeoutError:
            raise _too_slow(url, total) from None
        finally:
            pool.shutdown(wait=False)
    return bounded


def _get(url: str, target: Target, max_bytes: int, timeout: float, watchdog: _Watchdog) -> bytes | str:
    """The body, or the URL a redirect points to."""
    conn = _PinnedConnection(target, timeout, watchdog)
    try:
        conn.request("GET", target.path, headers={"Host": target.host_header, "User-Agent": "timex-stream",
                                                  "Accept": "text/csv, text/plain, */*"})
        resp = conn.getresponse()
        if resp.status in _REDIRECTS and resp.getheader("Location"):
            return urljoin(url, resp.getheader("Location", ""))
        if resp.status != 200:
            raise DownloadError(f"downloading {url} failed: the server answered HTTP {resp.status} "
                                f"{resp.reason[:100]}")
        encoding = (resp.getheader("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            raise DownloadError(f"downloading {url} failed: the server sent compressed data (Content-Encoding: "
                                f"{encoding}); only uncompressed CSV is supported")
        if resp.length is not None and resp.length > max_bytes:
            raise DownloadError(f"{url} is {resp.length} bytes; the limit is {max_bytes}")
        chunks, size = [], 0
        while chunk := resp.read1(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise DownloadError(f"{url} is larger than the limit of {max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        watchdog.watch(None)
        conn.close()


def _too_slow(url: str, total: float) -> DownloadError:
    return DownloadError(f"downloading {url} took longer than the limit of {total:g} s "
                         f"(the server is too slow or never finished sending)")


def _plain(exc: BaseException, target: Target, timeout: float) -> str:
    where = f"{target.host}:{target.port}"
    if isinstance(exc, TimeoutError):
        return f"the server at {where} did not answer within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing accepts connections at {where} (connection refused)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the HTTPS certificate of {target.host} is not valid ({exc.verify_message})"
    if isinstance(exc, (http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionResetError)):
        return f"the server at {where} closed the connection before sending everything"
    if isinstance(exc, http.client.HTTPException):
        return f"the answer of the server at {where} is not valid HTTP ({type(exc).__name__}: {exc})"
    return f"{type(exc).__name__}: {exc}"
