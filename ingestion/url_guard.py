"""The SSRF guard: decide, without opening a connection, whether a user's URL may be fetched and to which
address. Only http(s) to public addresses passes, unless the operator's allow-list names the target.

The host is brought to one canonical form before anything is checked, and the address that is checked is
the address the downloader connects to: IPv4 spellings the C library would accept (`127.1`, `0x7f.1`,
`2130706433`, `0177.0.0.1`) are parsed here rather than handed to a resolver; Unicode names are IDNA-encoded
(NFKC, so `ⓛⓞⓒⓐⓛⓗⓞⓢⓣ` is `localhost`) before resolving; IPv6 forms that embed an IPv4 address (mapped,
compatible, translated, NAT64, 6to4) are judged by that IPv4 address. URLs that parsers disagree on (user info before
`@`, backslashes, spaces and control characters, percent-encoded host names) are refused outright.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

SOURCE_URL_FIELD = "input_parameters.source_data_url"  # what a refusal names (see _refuse)
_FIELD = SOURCE_URL_FIELD
# Cloud metadata/host services on addresses the generic classes below would not all catch (Azure's wire
# server is a public address; Alibaba's sits in the shared 100.64/10 space).
_METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "168.63.129.16", "100.100.100.200", "fd00:ec2::254"))
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                             "instance-data.ec2.internal", "metadata.azure.internal"})
_SHARED_V4 = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: internal in several clouds
_GLOBAL_V6 = ipaddress.ip_network("2000::/3")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_HOST_CHARS = re.compile(r"[a-z0-9._-]+")
_PRINTABLE_ASCII = "".join(map(chr, range(0x21, 0x7F)))  # kept as written; anything else is %-encoded
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")


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

    def allows(self, host: str, port: int, addr: IPAddress) -> bool:
        if (host.lower(), port) in self.host_ports or (str(addr), port) in self.host_ports:
            return True
        return any(addr in net for net in self.networks)


def _embedded_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the forms that route to IPv4."""
    low32 = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if any(addr in net for net in _NAT64) or addr in _V4_TRANSLATED:
        return low32
    if int(addr) >> 32 == 0 and int(addr) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return low32
    return None


def forbidden_reason(addr: IPAddress) -> str | None:
    """Why connecting to `addr` is not allowed for a user's URL, or None for a public address."""
    if addr in _METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(addr, ipaddress.IPv6Address) and (embedded := _embedded_v4(addr)) is not None:
        return forbidden_reason(embedded)
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local"
    if addr.is_multicast:
        return "multicast"
    if addr.is_reserved:
        return "reserved"
    if isinstance(addr, ipaddress.IPv4Address) and addr in _SHARED_V4:
        return "shared (carrier-grade NAT)"
    if addr.is_private:
        return "private"
    if not addr.is_global or (isinstance(addr, ipaddress.IPv6Address) and addr not in _GLOBAL_V6):
        return "non-public"
    return None


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # canonical: lower case, IDNA-encoded, no trailing dot; an IP literal without brackets
    port: int
    ip: str  # the checked address; the downloader connects here and nowhere else
    path: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.scheme == "https" else 80) else f"{host}:{self.port}"


def _refuse(message: str) -> DownloadError:
    return DownloadError(f"{_FIELD}: {message}")


def _literal_ip(host: str) -> IPAddress | None:
    """An IPv4 address written in any spelling the C library accepts; None for a host name."""
    if not _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        return None
    try:  # as browsers do: a name ending in a number is an IPv4 address or nothing
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise _refuse(f"'{host}' is not a valid IPv4 address") from None


def _canonical_host(raw: str, bracketed: bool) -> tuple[str, IPAddress | None]:
    """(host, its address if the URL gives one) in the one form that is checked and connected to."""
    if bracketed:
        try:
            addr: IPAddress = ipaddress.IPv6Address(raw.replace("%25", "%", 1))
        except ValueError:
            raise _refuse(f"'[{raw}]' is not a valid IPv6 address") from None
        return str(addr), addr
    if "%" in raw:
        raise _refuse(f"percent-encoded characters in the host name '{raw}' are not supported")
    try:  # IDNA applies NFKC: full-width digits and letters become ASCII ones
        host = raw.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise _refuse(f"'{raw}' is not a valid host name") from None
    host = host[:-1] if host.endswith(".") else host
    if not _HOST_CHARS.fullmatch(host):
        raise _refuse(f"'{raw}' is not a valid host name")
    literal = _literal_ip(host)
    return (str(literal), literal) if literal is not None else (host, None)


def _split(url: str) -> tuple[str, str, bool, int, str]:
    """(scheme, host, bracketed, port, path) of a URL that every parser reads the same way."""
    if any(ch <= " " or ch == "\x7f" for ch in url) or "\\" in url:
        raise _refuse("the URL contains a space, a control character or a backslash")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed '[' of an IPv6 address
        raise _refuse(f"'{url}' is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise _refuse(f"only http and https URLs are supported, got '{parts.scheme or url}'")
    if "@" in parts.netloc:
        raise _refuse("a user name or password in the URL (the part before '@') is not supported")
    if not parts.hostname:
        raise _refuse(f"no host in '{url}'")
    try:
        port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _refuse(f"bad port in '{url}'") from None
    if not 0 < port < 65536:
        raise _refuse(f"bad port in '{url}'")
    path = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_PRINTABLE_ASCII)
    return parts.scheme, parts.hostname, parts.netloc.startswith("["), port, path


def _shown(raw_host: str, addr: IPAddress) -> str:
    """The host as the user wrote it, then what it stands for: `0x7f.1 (127.0.0.1)`."""
    meanings = [] if raw_host == str(addr) else [str(addr)]
    if isinstance(addr, ipaddress.IPv6Address) and (embedded := _embedded_v4(addr)) is not None:
        meanings.append(f"IPv4 {embedded}")
    return f"{raw_host} ({', which is '.join(meanings)})" if meanings else raw_host


def check_url(url: str, allowlist: Allowlist, resolve: Resolver = system_resolver) -> Target:
    """Validate scheme and address of `url`; returns where to connect. Opens no connection."""
    scheme, raw_host, bracketed, port, path = _split(url)
    host, literal = _canonical_host(raw_host, bracketed)
    if literal is not None:
        addrs = [literal]
    else:
        if host in _METADATA_NAMES and (host, port) not in allowlist.host_ports:
            raise DownloadError(f"refusing to download from {host}: cloud metadata services are not allowed")
        addrs = []
        for ip in resolve(host, port):
            try:
                addrs.append(ipaddress.ip_address(ip))
            except ValueError:
                raise DownloadError(f"cannot resolve host '{host}': got '{ip}', not an address") from None
        if not addrs:
            raise DownloadError(f"cannot resolve host '{host}'")
    for addr in addrs:  # every address must pass: the client could connect to any of them
        reason = forbidden_reason(addr)
        if reason and not allowlist.allows(host, port, addr):
            raise DownloadError(f"refusing to download from {_shown(raw_host, addr)}: {reason} addresses are not "
                                f"allowed (operators can allow it with TIMEX_URL_ALLOWLIST)")
    return Target(scheme, host, port, str(addrs[0]), path)
