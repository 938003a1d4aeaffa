"""The guarded downloader: real HTTP to a local server; refusals checked with a fake resolver, no socket."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from ingestion.download import Allowlist, DownloadError, check_url, download

CSV = b"date,a\n2020-01-01,1\n2020-01-02,2\n"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/data.csv":
            self.send_response(200)
            self.send_header("Content-Length", str(len(CSV)))
            self.end_headers()
            self.wfile.write(CSV)
        elif self.path == "/big.csv":
            self.send_response(200)
            self.end_headers()  # no Content-Length: the cap must hold while streaming
            self.wfile.write(b"x" * 5000)
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/data.csv")
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_downloads_from_an_allow_listed_local_server(server: str) -> None:
    allow = Allowlist.parse([server])
    assert download(f"http://{server}/data.csv", allow, 1000, 5) == CSV
    assert download(f"http://{server}/moved", allow, 1000, 5) == CSV  # redirect followed and re-checked


def test_cidr_allowlist(server: str) -> None:
    assert download(f"http://{server}/data.csv", Allowlist.parse(["127.0.0.0/8"]), 1000, 5) == CSV


def test_size_cap_with_and_without_content_length(server: str) -> None:
    allow = Allowlist.parse([server])
    with pytest.raises(DownloadError, match="limit is 10"):
        download(f"http://{server}/data.csv", allow, 10, 5)
    with pytest.raises(DownloadError, match="larger than the limit of 1000"):
        download(f"http://{server}/big.csv", allow, 1000, 5)


def test_http_error_is_reported(server: str) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"http://{server}/missing.csv", Allowlist.parse([server]), 1000, 5)


def test_loopback_refused_without_allowlist(server: str) -> None:
    with pytest.raises(DownloadError, match="loopback addresses are not allowed"):
        download(f"http://{server}/data.csv", Allowlist.parse([]), 1000, 5)


def _never(host: str, port: int) -> list[str]:
    raise AssertionError("must not resolve")


@pytest.mark.parametrize("url, reason", [
    ("ftp://example.org/a.csv", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("http:///nohost", "no host"),
])
def test_bad_urls_refused_before_resolving(url: str, reason: str) -> None:
    with pytest.raises(DownloadError, match=reason):
        check_url(url, Allowlist.parse([]), _never)


@pytest.mark.parametrize("ip, reason", [
    ("10.1.2.3", "private"), ("192.168.0.5", "private"), ("172.16.9.9", "private"),
    ("169.254.169.254", "link-local/metadata"), ("127.0.0.1", "loopback"), ("::1", "loopback"),
    ("fe80::1", "link-local"), ("::ffff:10.0.0.1", "private"), ("0.0.0.0", "unspecified"), ("240.0.0.1", "reserved"),
])
def test_internal_addresses_refused_without_connecting(ip: str, reason: str) -> None:
    """The resolver is fake: nothing is sent to these addresses."""
    with pytest.raises(DownloadError, match=reason):
        check_url("http://data.example.org/x.csv", Allowlist.parse([]), lambda h, p: [ip])


def test_one_bad_address_among_several_refuses() -> None:
    with pytest.raises(DownloadError, match="10.0.0.1"):
        check_url("https://data.example.org/x.csv", Allowlist.parse([]), lambda h, p: ["93.184.216.34", "10.0.0.1"])


def test_public_address_passes_check_and_allowlist_matches_host_and_port() -> None:
    target = check_url("https://data.example.org/x.csv?y=1", Allowlist.parse([]), lambda h, p: ["93.184.216.34"])
    assert (target.ip, target.port, target.path) == ("93.184.216.34", 443, "/x.csv?y=1")
    allow = Allowlist.parse(["data.internal:8080"])
    assert check_url("http://data.internal:8080/a", allow, lambda h, p: ["10.0.0.7"]).ip == "10.0.0.7"
    with pytest.raises(DownloadError):
        check_url("http://data.internal:8081/a", allow, lambda h, p: ["10.0.0.7"])


def test_bad_allowlist_entry() -> None:
    with pytest.raises(ValueError, match="neither host:port nor a CIDR"):
        Allowlist.parse(["nonsense"])
