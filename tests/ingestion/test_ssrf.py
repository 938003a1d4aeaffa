"""The SSRF guard: every forbidden URL (and every redirect to one) is refused before a connection is made.

Names are resolved by a fake resolver; `net_guard` (tests/ingestion/conftest.py) fails any test that
connects or resolves outside 127.0.0.0/8, and these tests also assert that no socket was opened at all
(or, for redirects, only the one to the allow-listed local server)."""

from __future__ import annotations

import socket
from urllib.parse import quote

import pytest

from ingestion.download import Allowlist, DownloadError, check_url, download
from tests.plugins.ingestion_net import CSV, NetGuard

FAKE_DNS = {
    "localhost": ["127.0.0.1", "::1"],
    "internal.example": ["10.0.0.5"],
    "rebind.example": ["93.184.216.34", "10.0.0.1"],  # one public, one private answer
    "nat64.example": ["64:ff9b::a00:1"],
    "v6.example": ["fd12::1"],
    "metadata.google.internal": ["169.254.169.254"],
    "public.example": ["93.184.216.34"],
}


def fake_resolve(host: str, port: int) -> list[str]:
    if host not in FAKE_DNS:
        raise AssertionError(f"unexpected name resolution: {host!r}")
    return FAKE_DNS[host]


REFUSED = "refusing to download from"
FORBIDDEN = [
    # schemes
    ("file:///etc/passwd", "only http and https"),
    ("ftp://example.org/a.csv", "only http and https"),
    ("gopher://127.0.0.1:70/_GET%20/", "only http and https"),
    ("dict://127.0.0.1:11211/stat", "only http and https"),
    ("data:text/csv,date,a", "only http and https"),
    ("http:///nohost", "no host"),
    # loopback in every IPv4 spelling
    ("http://127.0.0.1/", "loopback"),
    ("http://127.0.0.1:8080/data.csv", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://127.0.0.1./", "loopback"),
    ("http://0x7f.1/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0x7F.0x0.0x0.0x1/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://017700000001/", "loopback"),
    ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "loopback"),  # full-width digits
    ("http://localhost/", "loopback"),
    ("http://127\u30020\u30020\u30021/", "loopback"),  # ideographic full stops
    ("http://localhost:80#@10.0.0.1/", "loopback"),
    ("http://10.0.0.1#@public.example/", "private"),
    ("HTTP://LOCALHOST./", "loopback"),
    ("http://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3/", "loopback"),  # circled letters
    ("http://0.0.0.0/", "unspecified"),
    ("http://0/", "unspecified"),
    # private, shared, metadata
    ("http://10.0.0.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://012.0.0.1/", "private"),  # octal 10
    ("http://167772161/", "private"),  # decimal 10.0.0.1
    ("http://100.64.0.1/", "shared"),
    ("http://100.100.100.200/latest/meta-data/", "cloud metadata"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://0xa9fea9fe/", "cloud metadata"),
    ("http://169.254.1.1/", "link-local"),
    ("http://168.63.129.16/", "cloud metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata"),
    ("http://[fd00:ec2::254]/", "cloud metadata"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    ("http://192.0.2.1/", "private"),  # documentation range
    ("http://198.18.0.1/", "private"),  # benchmarking range
    # IPv6 and IPv4 inside IPv6
    ("http://[::1]/", "loopback"),
    ("http://[::1]:80/", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]/", "loopback"),
    ("http://[::]/", "unspecified"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[::ffff:127.0.0.1]/", r"from ::ffff:127.0.0.1 \(::ffff:7f00:1, which is IPv4 127.0.0.1\): loopback"),
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
    ("http://[::127.0.0.1]/", "loopback"),  # IPv4-compatible
    ("http://[::ffff:0:10.0.0.1]/", "private"),  # IPv4-translated
    ("http://[64:ff9b::10.0.0.1]/", "private"),  # NAT64
    ("http://[64:ff9b::7f00:1]/", "loopback"),
    ("http://[2002:a00:1::]/", r"2002:a00:1:: \(IPv4 10.0.0.1\): private"),  # 6to4 of 10.0.0.1
    ("http://[2002:7f00:1::]/", "loopback"),
    ("http://[2001:db8::1]/", "private"),  # documentation range
    # names resolving to forbidden addresses (fake resolver)
    ("http://internal.example/a.csv", "private"),
    ("http://rebind.example/a.csv", "10.0.0.1"),
    ("http://nat64.example/a.csv", "private"),
    ("http://v6.example/a.csv", "private"),
    # user info, backslashes, encodings: refused as ambiguous
    ("http://user@127.0.0.1/", "user name or password"),
    ("http://public.example@10.0.0.1/", "user name or password"),
    ("http://user:pass@public.example/", "user name or password"),
    ("http://127.0.0.1%2f@public.example/", "user name or password"),
    ("http://10.0.0.1\\@public.example/", "backslash"),
    ("http:/\\127.0.0.1/", "backslash"),
    ("http://127.0.0.1 /", "space"),
    ("http://127.0.0.1\t/", "control character"),
    ("http://public.example\r\nHost: 127.0.0.1/", "control character"),
    ("http://%31%32%37.0.0.1/", "percent-encoded"),
    ("http://[::1/", "not a valid URL"),
    ("http://[127.0.0.1]/", "not a valid URL"),
    ("http://[::1x]/", "not a valid"),
    ("http://1.2.3.4.5/", "not a valid IPv4"),
    ("http://0x7g.1/", "not a valid IPv4"),
    ("http://public.123/", "not a valid IPv4"),
    ("http://exa_mple!.com/", "not a valid host name"),
    ("http://" + "a" * 300 + ".example/", "not a valid host name"),
    ("http://127.0.0.1:0/", "bad port"),
    ("http://127.0.0.1:99999/", "bad port"),
    ("http://127.0.0.1:http/", "bad port"),
]


@pytest.mark.parametrize(("url", "reason"), FORBIDDEN, ids=[u for u, _ in FORBIDDEN])
def test_forbidden_url_is_refused_without_a_connection(url: str, reason: str, net_guard: NetGuard) -> None:
    with pytest.raises(DownloadError, match=reason) as caught:
        download(url, Allowlist.parse([]), 1000, 5, resolve=fake_resolve)
    message = str(caught.value)
    assert message.startswith(("input_parameters.source_data_url:", REFUSED)), message
    assert net_guard.connections == []


REDIRECT_TARGETS = [
    ("file:///etc/passwd", "only http and https"),
    ("gopher://10.0.0.1:70/_x", "only http and https"),
    ("http://[::1]/", "loopback"),
    ("http://127.0.0.1:9/", "loopback"),  # same host, other port: not on the allow-list
    ("http://2130706433/", "loopback"),
    ("http://0x7f.1/", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://metadata.google.internal/", "cloud metadata"),
    ("http://[::ffff:10.0.0.1]/", "private"),
    ("//10.0.0.1/x.csv", "private"),  # scheme-relative
    ("http://internal.example/", "private"),
    ("http://user@public.example/", "user name or password"),
    ("http://10.0.0.1\\@public.example/", "backslash"),
]


@pytest.mark.parametrize(("to", "reason"), REDIRECT_TARGETS, ids=[t for t, _ in REDIRECT_TARGETS])
def test_redirect_to_a_forbidden_url_is_refused_before_following(
        to: str, reason: str, hostile_server: str, net_guard: NetGuard) -> None:
    allow = Allowlist.parse([hostile_server])  # the local server exactly, nothing else
    with pytest.raises(DownloadError, match=reason.replace("[", r"\[")):
        download(f"http://{hostile_server}/redirect?to={quote(to, safe='')}", allow, 1000, 5, resolve=fake_resolve)
    port = int(hostile_server.rsplit(":", 1)[1])
    assert net_guard.connections == [("127.0.0.1", port)]  # the first hop only


def test_the_allow_listed_server_is_reached_in_any_spelling(hostile_server: str, net_guard: NetGuard) -> None:
    port = hostile_server.rsplit(":", 1)[1]
    allow = Allowlist.parse([hostile_server])
    for host in ("127.0.0.1", "127.1", "0x7f000001", "2130706433"):
        assert download(f"http://{host}:{port}/data.csv", allow, 1000, 5, resolve=fake_resolve) == CSV
    assert net_guard.connections == [("127.0.0.1", int(port))] * 4  # the checked address, always


def test_checked_address_is_the_connected_address() -> None:
    target = check_url("https://0x5d.0xb8.0xd8.0x22/x.csv?y=1", Allowlist.parse([]), fake_resolve)
    assert (target.ip, target.host, target.port, target.path) == ("93.184.216.34", "93.184.216.34", 443, "/x.csv?y=1")
    target = check_url("http://public.example:8080/donn\u00e9es/a%20b.csv?q=\u00e9", Allowlist.parse([]), fake_resolve)
    assert (target.ip, target.host_header) == ("93.184.216.34", "public.example:8080")
    assert target.path == "/donn%C3%A9es/a%20b.csv?q=%C3%A9"  # what http.client can send, as a browser would


def test_allowlist_by_name_port_and_network() -> None:
    allow = Allowlist.parse(["internal.example:8080", "fd12::/16"])
    assert check_url("http://internal.example:8080/a", allow, fake_resolve).ip == "10.0.0.5"
    assert check_url("http://v6.example/a", allow, fake_resolve).ip == "fd12::1"
    with pytest.raises(DownloadError, match="private"):
        check_url("http://internal.example:8081/a", allow, fake_resolve)


def test_bad_allowlist_entry() -> None:
    with pytest.raises(ValueError, match="neither host:port nor a CIDR"):
        Allowlist.parse(["nonsense"])


def test_the_guard_fails_a_test_that_reaches_outside_loopback(net_guard: NetGuard) -> None:
    """The guard itself: each way out raises before the real call and is recorded (which would fail the
    test at teardown; cleared here because this test expects it)."""
    sock = socket.socket()
    with sock:
        with pytest.raises(AssertionError, match="outside 127.0.0.0/8"):
            sock.connect(("192.0.2.1", 80))  # TEST-NET-1, never reached
        with pytest.raises(AssertionError, match="outside 127.0.0.0/8"):
            sock.connect_ex(("10.0.0.1", 80))
        with pytest.raises(OSError):
            sock.getpeername()  # the real connect never ran
    with pytest.raises(AssertionError, match="outside 127.0.0.0/8"):
        socket.create_connection(("::1", 80), timeout=0.1)
    with pytest.raises(AssertionError, match="outside 127.0.0.0/8"):
        socket.getaddrinfo("example.org", 80)
    # The downloader's own connect goes through the guard too: a public address passes the SSRF check,
    # so only the guard stops this one.
    with pytest.raises(AssertionError, match="93.184.216.34"):
        download("http://public.example/a.csv", Allowlist.parse([]), 1000, 5, resolve=fake_resolve)
    assert len(net_guard.violations) == 5 and net_guard.connections == []
    net_guard.violations.clear()
