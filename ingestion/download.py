"""Fetch a CSV over http(s) for a user, safely: timeouts, a size cap, and no requests to private,
loopback, link-local or metadata addresses unless the allow-list names them (SSRF guard).

The host is resolved once and the connection goes to the checked address (no DNS rebinding between
check and connect); redirects are followed by hand so each hop is checked again.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

Resolver = Callable[[str, int], list[str]]
MAX_REDIRECTS = 3


class DownloadError(ValueError):
    """The data could not be fetched; the message says why in words a user can act on."""


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DownloadError(f"cannot resolve host '{host}': {exc.strerror}") from exc
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class Allowlist:
    """Entries are `host:port` (exact) or a CIDR network (any port)."""

    host_ports: frozenset[tuple[str, int]]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        host_ports, networks = set(), []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            host, sep, port = entry.rpartition(":")
            if not sep or not port.isdigit():
                raise ValueError(f"TIMEX_URL_ALLOWLIST entry '{entry}' is neither host:port nor a CIDR")
            host_ports.add((host.strip("[]").lower(), int(port)))
        return cls(frozenset(host_ports), tuple(networks))

    def allows(self, host: str, port: int, ip: str) -> bool:
        if (host.lower(), port) in self.host_ports or (ip, port) in self.host_ports:
            return True
        addr = ipaddress.ip_address(ip)
        return any(addr in net for net in self.networks)


def _forbidden_reason(ip: str) -> str | None:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:  # includes the cloud metadata address 169.254.169.254
        return "link-local/metadata"
    if addr.is_multicast or addr.is_reserved:
        return "reserved"
    if addr.is_private:
        return "private"
    return None


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    ip: str
    path: str


def check_url(url: str, allowlist: Allowlist, resolve: Resolver = system_resolver) -> Target:
    """Validate scheme and address of `url`; returns where to connect. Opens no connection."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise DownloadError(f"input_parameters.source_data_url: only http and https URLs are supported, "
                            f"got '{parts.scheme or url}'")
    if not parts.hostname:
        raise DownloadError(f"input_parameters.source_data_url: no host in '{url}'")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise DownloadError(f"input_parameters.source_data_url: bad port in '{url}'") from exc
    ips = resolve(parts.hostname, port)
    if not ips:
        raise DownloadError(f"cannot resolve host '{parts.hostname}'")
    for ip in ips:  # every address must pass: the client could connect to any of them
        reason = _forbidden_reason(ip)
        if reason and not allowlist.allows(parts.hostname, port, ip):
            raise DownloadError(f"refusing to download from {parts.hostname} ({ip}): {reason} addresses are not "
                                f"allowed (operators can allow it with TIMEX_URL_ALLOWLIST)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, parts.hostname, port, ips[0], path)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked IP, with SNI and certificate checks against the URL's host name."""

    def __init__(self, host: str, ip: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._ip = ip

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def download(url: str, allowlist: Allowlist, max_bytes: int, timeout: float,
             resolve: Resolver = system_resolver) -> bytes:
    """GET `url` → body bytes. Raises DownloadError for every failure (with the reason)."""
    deadline = time.monotonic() + timeout * 4  # per-socket timeouts plus an overall bound
    for _ in range(MAX_REDIRECTS + 1):
        target = check_url(url, allowlist, resolve)
        if target.scheme == "https":
            conn: http.client.HTTPConnection = _PinnedHTTPSConnection(target.host, target.ip, target.port, timeout)
        else:
            conn = http.client.HTTPConnection(target.ip, target.port, timeout=timeout)
        try:
            host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
            conn.request("GET", target.path, headers={"Host": host_header, "User-Agent": "timex-stream",
                                                      "Accept": "text/csv, text/plain, */*"})
            resp = conn.getresponse()
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                url = urljoin(url, resp.getheader("Location", ""))
                continue
            if resp.status != 200:
                raise DownloadError(f"downloading {url} failed: HTTP {resp.status} {resp.reason}")
            length = resp.getheader("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise DownloadError(f"{url} is {int(length)} bytes; the limit is {max_bytes}")
            chunks, size = [], 0
            while chunk := resp.read(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"{url} is larger than the limit of {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise DownloadError(f"downloading {url} took longer than {timeout * 4:.0f} s")
                chunks.append(chunk)
            return b"".join(chunks)
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(f"downloading {url} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
    raise DownloadError(f"downloading {url} failed: more than {MAX_REDIRECTS} redirects")
