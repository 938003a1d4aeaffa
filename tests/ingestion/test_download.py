"""The downloader against a real local server (allow-listed by exact 127.0.0.1:PORT) with good and hostile
answers: each hostile one ends in a DownloadError or DataError with a plain message, within a bounded time."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

import pytest

from ingestion.download import Allowlist, DownloadError, download
from ingestion.ingest import ingest
from tests.plugins.ingestion_net import BOMB_OUTPUT_BYTES, CSV

TIMEOUT = 1.0  # per connect/read; the whole download is cut at TOTAL
TOTAL = 2.0
SLACK = 3.0  # scheduling on a busy 2-core machine; what matters is "bounded", not the exact figure


def fetch(server: str, path: str, max_bytes: int = 100_000) -> bytes:
    return download(f"http://{server}{path}", Allowlist.parse([server]), max_bytes, TIMEOUT,
                    total_timeout=TOTAL)


def test_downloads_from_an_allow_listed_local_server(hostile_server: str) -> None:
    assert fetch(hostile_server, "/data.csv") == CSV
    assert fetch(hostile_server, "/moved") == CSV  # redirect followed and re-checked


def test_cidr_allowlist(hostile_server: str) -> None:
    allow = Allowlist.parse(["127.0.0.0/8"])
    assert download(f"http://{hostile_server}/data.csv", allow, 1000, TIMEOUT) == CSV


def test_loopback_refused_without_allowlist(hostile_server: str) -> None:
    with pytest.raises(DownloadError, match="loopback addresses are not allowed"):
        download(f"http://{hostile_server}/data.csv", Allowlist.parse([]), 1000, TIMEOUT)


HOSTILE = [
    ("/status/404", 100_000, "the server answered HTTP 404 Not Found"),
    ("/status/500", 100_000, "the server answered HTTP 500 Internal Server Error"),
    ("/loop", 100_000, "redirected more than 3 times"),
    ("/data.csv", 10, "is 33 bytes; the limit is 10"),
    ("/big.csv", 1000, "larger than the limit of 1000 bytes"),  # no Content-Length
    ("/huge-length", 100_000, "is 1000000000000 bytes; the limit is 100000"),
    ("/endless", 1_000_000, "larger than the limit of 1000000 bytes"),  # chunked, never ends
    ("/gzip", 100_000, r"compressed data \(Content-Encoding: gzip\); only uncompressed CSV"),
    ("/many-headers", 100_000, "is not valid HTTP \\(HTTPException: got more than 100 headers\\)"),
    ("/not-http", 100_000, "is not valid HTTP \\(BadStatusLine"),
    ("/drip", 100_000, f"took longer than the limit of {TOTAL:g} s"),  # a byte every 50 ms, forever
    ("/drip-headers", 100_000, f"took longer than the limit of {TOTAL:g} s"),
]


@pytest.mark.parametrize(("path", "max_bytes", "message"), HOSTILE, ids=[p for p, _, _ in HOSTILE])
def test_hostile_answer_fails_plainly_in_bounded_time(
        hostile_server: str, path: str, max_bytes: int, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(DownloadError, match=message):
        fetch(hostile_server, path, max_bytes)
    assert time.monotonic() - started < TOTAL + SLACK


def test_a_server_that_never_answers_times_out(silent_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(DownloadError, match=f"the server at {silent_server} did not answer within {TIMEOUT:g} s"):
        fetch(silent_server, "/data.csv")
    assert time.monotonic() - started < TOTAL + SLACK


def test_nothing_listening_is_a_plain_refusal() -> None:
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadError, match=f"nothing accepts connections at 127.0.0.1:{port}"):
        fetch(f"127.0.0.1:{port}", "/data.csv")


def test_the_drip_is_cut_by_the_default_total_of_four_timeouts(hostile_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(DownloadError, match="took longer than the limit of 2 s"):
        download(f"http://{hostile_server}/drip", Allowlist.parse([hostile_server]), 100_000, 0.5)
    assert time.monotonic() - started < 2 + SLACK


def _ingest_failure(server: str, path: str) -> dict:
    config = {"input_parameters": {"source_data_url": f"http://{server}{path}"},
              "model_parameters": {"models": "mockup", "test_values": 2, "prediction_lags": 2}}
    out = ingest({"request_id": "r1", "config_json": json.dumps(config)},
                 lambda url: download(url, Allowlist.parse([server]), 100_000, TIMEOUT, total_timeout=TOTAL))
    assert out.planned == [] and out.stored == [] and len(out.failures) == 1, out.failures
    return out.failures[0]


CONTENT = [
    ("/html", "data", "a web page (HTML/XML: a login or error page?), not a CSV"),
    ("/empty", "data", "the data are empty"),
    ("/binary", "data", "not a CSV text file (binary content)"),
    ("/bomb.csv.gz", "data", "a gzip-compressed file, not a CSV"),
    ("/gzip", "download", "compressed data (Content-Encoding: gzip)"),
    ("/status/404", "download", "HTTP 404 Not Found"),
]


@pytest.mark.parametrize(("path", "stage", "message"), CONTENT, ids=[p for p, _, _ in CONTENT])
def test_hostile_content_becomes_one_fatal_failure(hostile_server: str, path: str, stage: str,
                                                   message: str) -> None:
    failure = _ingest_failure(hostile_server, path)
    assert failure["stage"] == stage and failure["fatal"] is True
    assert message in failure["message"]


def test_the_gzip_bomb_is_never_inflated(hostile_server: str) -> None:
    body = fetch(hostile_server, "/bomb.csv.gz", max_bytes=1_000_000)
    assert body[:2] == b"\x1f\x8b" and len(body) < BOMB_OUTPUT_BYTES // 100  # the bytes as sent


def test_a_resolver_that_hangs_is_cut_by_the_total_time(hostile_server: str) -> None:
    import threading

    release = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        release.wait(30)
        return ["127.0.0.1"]

    started = time.monotonic()
    try:
        with pytest.raises(DownloadError, match=f"took longer than the limit of {TOTAL:g} s"):
            download("http://slow-dns.example/data.csv", Allowlist.parse(["127.0.0.0/8"]), 1000, TIMEOUT,
                     resolve=hanging, total_timeout=TOTAL)
        assert time.monotonic() - started < TOTAL + SLACK
    finally:
        release.set()


@pytest.fixture(scope="module")
def self_signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`127.0.0.1:PORT` of an HTTPS server whose certificate no authority signed."""
    import datetime
    import ipaddress
    import socket
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                context.wrap_socket(conn, server_side=True).close()  # the client gives up in the handshake

    threading.Thread(target=serve, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_an_https_certificate_no_authority_signed_is_refused(self_signed_server: str) -> None:
    with pytest.raises(DownloadError, match="the HTTPS certificate of 127.0.0.1 is not valid"):
        download(f"https://{self_signed_server}/data.csv", Allowlist.parse([self_signed_server]), 1000, TIMEOUT,
                 total_timeout=TOTAL)


def test_the_service_fetcher_reads_the_allowlist_and_limits_from_the_environment(
        hostile_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from ingestion.ingest import fetcher
    from timex_stream.runtime.settings import Settings

    monkeypatch.setenv("TIMEX_URL_ALLOWLIST", f"10.0.0.0/8, {hostile_server}")
    monkeypatch.setenv("TIMEX_DOWNLOAD_MAX_BYTES", "1000")
    monkeypatch.setenv("TIMEX_DOWNLOAD_TIMEOUT_S", "0.5")
    fetch_ = fetcher(Settings.from_env())
    assert fetch_(f"http://{hostile_server}/data.csv") == CSV
    with pytest.raises(DownloadError, match="larger than the limit of 1000 bytes"):
        fetch_(f"http://{hostile_server}/big.csv")
    started = time.monotonic()
    with pytest.raises(DownloadError, match="took longer than the limit of 2 s"):  # 4 x 0.5 s, < 1000 bytes
        fetch_(f"http://{hostile_server}/drip")
    assert time.monotonic() - started < 2 + SLACK
    port = hostile_server.rsplit(":", 1)[1]
    with pytest.raises(DownloadError, match="loopback addresses are not allowed"):
        fetch_(f"http://127.0.0.2:{port}/data.csv")  # only the exact host:port is allowed
