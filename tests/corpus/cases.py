"""The bad-input corpus as a table: how each case is sent and what it must end in.

Four ways in: `Http` (to a real gateway process), `Kafka` (a ForecastRequest from `submit`, or plain JSON
from a bare producer, with any key), `Poison` (undecodable bytes on a topic) and the files the hostile
server serves. Expectations: `Rejected` (HTTP status + field + words), `Fails` (a Failure: stage + words),
`Answers` (a correct answer for every series, optionally with some series failing in plain words),
`DeadLetter` (parked with its reason; a keyed config also answers its sender), `Skipped` (readers skip and
count it). Words are matched case-insensitively; every word must appear.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.plugins.frames import make_config, synthetic_frame

# --- expectations ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    status: int
    field: str | None
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fails:
    stage: str | tuple[str, ...]  # a tuple: any of these stages (the wording is what matters to the user)
    words: tuple[str, ...]
    series: str | None = None  # the failure is about this series (None: the whole request, fatal)
    within_s: float | None = None  # the failure comes at most this long after the request was accepted


@dataclass(frozen=True)
class Answers:
    series: tuple[str, ...]
    failed: dict[str, tuple[str, ...]] = field(default_factory=dict)  # series → words of its data failure


@dataclass(frozen=True)
class DeadLetter:
    words: tuple[str, ...]
    sender_told: bool = False  # a keyed config: a "decode" Failure under its key


@dataclass(frozen=True)
class Skipped:
    """Readers (gateway store, follow) skip it and count it."""


Expect = Rejected | Fails | Answers | DeadLetter | Skipped

# --- ways in ---------------------------------------------------------------------------------------------

Urls = Callable[[str], str]  # file or route name on the hostile server → its URL


@dataclass(frozen=True)
class Http:
    method: str
    path: str
    request: Callable[[Urls], dict[str, Any]] = lambda urls: {}  # requests.request keyword arguments
    expect: Rejected | Fails | Answers = Rejected(400, "config")


@dataclass(frozen=True)
class Kafka:
    config: Callable[[Urls], dict[str, Any] | str | bytes]  # dict/str: a ForecastRequest from `submit`; bytes:
    # plain JSON from a bare producer
    expect: Fails | Answers
    key: str | None = None  # plain JSON only: the Kafka key as sent (a request id, maybe a bad one)
    csv: bytes | None = None  # uploaded with the request instead of a download


@dataclass(frozen=True)
class Poison:
    topic: str
    payload: str  # "random" | "truncated" | "too_new"
    expect: DeadLetter | Skipped
    keyed: bool = True


@dataclass(frozen=True)
class Case:
    id: str
    via: Http | Kafka | Poison


# --- data ------------------------------------------------------------------------------------------------

GOOD = synthetic_frame(48)


def csv_of(frame: Any) -> bytes:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()


def config(urls: Urls, source: str = "good.csv", columns: list[str] | None = None, **model: Any) -> dict[str, Any]:
    """A fast valid config reading `source` from the hostile server; `model` overrides model_parameters."""
    doc = make_config(urls(source), columns or ["walk"], models="naive", prediction_lags=3, test_values=3)
    doc["model_parameters"].update(model)
    return doc


def edited(path: str, value: Any, source: str = "good.csv") -> Callable[[Urls], dict[str, Any]]:
    """A config with one dotted field set (`None`: removed)."""
    def build(urls: Urls) -> dict[str, Any]:
        doc = config(urls, source)
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node[p]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
        return doc
    return build


def on(source: str, columns: list[str] | None = None, **model: Any) -> Callable[[Urls], dict[str, Any]]:
    return lambda urls: config(urls, source, columns, **model)


ODD_NAMES = ["a/b", "with spaces  inside", "温度/湿度 (°C)", "e\u0301 %2F 100%", "\U0001f4c8 \u200b/", "n" * 1000]
odd = GOOD[["date"]].copy()
for i, name in enumerate(ODD_NAMES):
    odd[name] = GOOD["walk"] + 10 * i

no_date = GOOD[["walk"]].assign(when=GOOD["date"])[["when", "walk"]]
bad_dates = GOOD[["date", "walk"]].assign(date=[f"the {i}th of never" for i in range(len(GOOD))])
all_nan = GOOD[["date"]].assign(walk=[""] * len(GOOD))
duplicates = GOOD[["date", "walk"]].loc[GOOD.index.repeat(2)].reset_index(drop=True)
duplicates["walk"] = duplicates["walk"] + duplicates.index % 2  # the two rows of a date differ: averaged
mixed = GOOD[["date", "walk", "trend"]].assign(walk=[("abc" if i % 7 == 3 else str(v))
                                                     for i, v in enumerate(GOOD["walk"])])

FILES: dict[str, bytes] = {
    "good.csv": csv_of(GOOD),
    "odd-names.csv": csv_of(odd),
    "no-date.csv": csv_of(no_date),
    "bad-dates.csv": csv_of(bad_dates),
    "all-nan.csv": csv_of(all_nan),
    "one-row.csv": csv_of(GOOD[["date", "walk"]].head(1)),
    "duplicates.csv": csv_of(duplicates),
    "mixed.csv": csv_of(mixed),
}

# --- the cases -------------------------------------------------------------------------------------------

TEN_MB = {"activity_title": "big", "padding": "x" * (10 * 1024 * 1024)}

HTTP_CASES = [
    Case("http-malformed-json", Http("POST", "/api/requests", lambda u: {
        "data": b'{"input_parameters": {', "headers": {"Content-Type": "application/json"}},
        Rejected(400, "config", ("not valid JSON",)))),
    Case("http-json-array", Http("POST", "/api/requests", lambda u: {"json": [1, 2, 3]},
                                 Rejected(400, "config", ("JSON object",)))),
    Case("http-empty-body", Http("POST", "/api/requests", lambda u: {
        "data": b"", "headers": {"Content-Type": "application/json"}}, Rejected(400, "config", ("not valid JSON",)))),
    Case("http-binary-body", Http("POST", "/api/requests", lambda u: {
        "data": b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 100, "headers": {"Content-Type": "application/octet-stream"}},
        Rejected(400, "config", ("not valid JSON",)))),
    Case("http-wrong-type-test-values", Http("POST", "/api/requests", lambda u: {
        "json": edited("model_parameters.test_values", "six")(u)},
        Rejected(400, "config.model_parameters.test_values", ("integer",)))),
    Case("http-wrong-type-models", Http("POST", "/api/requests", lambda u: {
        "json": edited("model_parameters.models", 42)(u)},
        Rejected(400, "config.model_parameters.models", ("list",)))),
    Case("http-nan-prediction-lags", Http("POST", "/api/requests", lambda u: {
        "data": json.dumps(edited("model_parameters.prediction_lags", float("nan"))(u)).encode(),
        "headers": {"Content-Type": "application/json"}},
        Rejected(400, "config.model_parameters.prediction_lags", ()))),
    Case("http-missing-input-parameters", Http("POST", "/api/requests", lambda u: {
        "json": edited("input_parameters", None)(u)},
        Rejected(400, "config.input_parameters", ("required",)))),
    Case("http-missing-source-url", Http("POST", "/api/requests", lambda u: {
        "json": edited("input_parameters.source_data_url", None)(u)},
        Rejected(400, "config.input_parameters.source_data_url", ("required",)))),
    Case("http-unknown-model", Http("POST", "/api/requests", lambda u: {
        "json": edited("model_parameters.models", "naive,prophett")(u)},
        Rejected(400, "config.model_parameters.models", ("unknown model", "prophett")))),
    Case("http-unknown-transformation", Http("POST", "/api/requests", lambda u: {
        "json": edited("model_parameters.possible_transformations", "none,cube_root")(u)},
        Rejected(400, "config.model_parameters.possible_transformations", ("unknown transformation", "cube_root")))),
    Case("http-unknown-estimator", Http("POST", "/api/requests", lambda u: {
        "json": edited("model_parameters.main_accuracy_estimator", "r2")(u)},
        Rejected(400, "config.model_parameters.main_accuracy_estimator", ("unknown accuracy estimator", "r2")))),
    Case("http-negative-test-values", Http("POST", "/api/requests", lambda u: {
        "json": edited("model_parameters.test_values", -3)(u)},
        Rejected(400, "config.model_parameters.test_values", ("greater than or equal to 1",)))),
    Case("http-negative-prediction-lags", Http("POST", "/api/requests", lambda u: {
        "json": edited("model_parameters.prediction_lags", -1)(u)},
        Rejected(400, "config.model_parameters.prediction_lags", ("greater than or equal to 1",)))),
    Case("http-huge-prediction-lags", Http("POST", "/api/requests", lambda u: {
        "json": edited("model_parameters.prediction_lags", 10**9)(u)},
        Rejected(400, "config.model_parameters.prediction_lags", ("prediction_lags",)))),
    Case("http-huge-test-values", Http("POST", "/api/requests", lambda u: {
        "json": edited("model_parameters.test_values", 10**9)(u)},
        Rejected(400, "config.model_parameters.test_values", ("test_values",)))),
    Case("http-10mb-config", Http("POST", "/api/requests", lambda u: {"json": TEN_MB},
                                  Rejected(413, "body", ("larger than",)))),
    Case("http-request-id-with-space", Http("GET", "/api/requests/a%20b", expect=Rejected(
        400, "request_id", ("not valid",)))),
    Case("http-request-id-with-slash", Http("GET", "/api/requests/a%2Fb", expect=Rejected(
        400, "request_id", ("not valid",)))),
    Case("http-request-id-1000-chars", Http("GET", "/api/requests/" + "r" * 1000, expect=Rejected(
        400, "request_id", ("not valid", "1000 characters")))),
    Case("http-reforecast-bad-request-id", Http("POST", "/api/requests/..%20x/reforecast", expect=Rejected(
        400, "request_id", ("not valid",)))),
    Case("http-url-404", Http("POST", "/api/requests", lambda u: {"json": config(u, "missing.csv")},
                              Fails("download", ("HTTP 404",)))),
    Case("http-upload-odd-unicode-and-slash-names", Http("POST", "/api/requests", lambda u: {
        "files": {"config": ("c.json", json.dumps(config(u, "upload", ODD_NAMES)).encode()),
                  "csv": ("odd.csv", FILES["odd-names.csv"])}}, Answers(tuple(ODD_NAMES)))),
]

KAFKA_CASES = [
    Case("kafka-malformed-json-keyed", Kafka(lambda u: b'{"input_parameters": {"source_data_url":',
                                             Fails("decode", ("not a TIMEX config", "JSON")), key="corpus-malformed")),
    Case("kafka-deeply-nested-json-keyed", Kafka(lambda u: b"[" * 100_000 + b"]" * 100_000,
                                                 Fails("decode", ("nested too deeply",)), key="corpus-nested")),
    Case("kafka-deeply-nested-config-in-avro", Kafka(lambda u: "[" * 100_000 + "]" * 100_000,
                                                     Fails("config", ("nested too deeply",)))),
    Case("kafka-wrong-types", Kafka(edited("model_parameters.prediction_lags", "soon"),
                                    Fails("config", ("prediction_lags", "integer")))),
    Case("kafka-missing-model-parameters", Kafka(edited("model_parameters", None),
                                                 Fails("config", ("model_parameters", "required")))),
    Case("kafka-unknown-model", Kafka(edited("model_parameters.models", "naive,prophett"),
                                      Fails("config", ("unknown model", "prophett")))),
    Case("kafka-unknown-transformation", Kafka(edited("model_parameters.possible_transformations", "cbrt"),
                                               Fails("config", ("unknown transformation", "cbrt")))),
    Case("kafka-unknown-estimator", Kafka(edited("model_parameters.main_accuracy_estimator", "accuracy"),
                                          Fails("config", ("unknown accuracy estimator",)))),
    Case("kafka-negative-test-values", Kafka(edited("model_parameters.test_values", -6),
                                             Fails("config", ("test_values", "greater than or equal to 1")))),
    Case("kafka-negative-prediction-lags", Kafka(edited("model_parameters.prediction_lags", 0),
                                                 Fails("config", ("prediction_lags", "greater than or equal to 1")))),
    Case("kafka-huge-prediction-lags", Kafka(edited("model_parameters.prediction_lags", 10**9),
                                             Fails("limits", ("prediction_lags",)))),
    Case("kafka-huge-test-values", Kafka(edited("model_parameters.test_values", 10**9),
                                         Fails("limits", ("test_values",)))),
    Case("kafka-url-404", Kafka(on("missing.csv"), Fails("download", ("HTTP 404",)))),
    # The test stack's download timeout is 5 s (TIMEX_DOWNLOAD_TIMEOUT_S); the hostile server holds on for 60 s
    # (never answers) or drips for 120 s: the download must give up long before.
    Case("kafka-url-never-answers", Kafka(on("hang"), Fails("download", ("did not answer within",), within_s=45))),
    Case("kafka-html-page", Kafka(on("html"), Fails("data", ("web page", "HTML", "not a CSV")))),
    Case("kafka-empty-file", Kafka(on("empty"), Fails("data", ("empty",)))),
    Case("kafka-binary-data", Kafka(on("binary"), Fails("data", ("binary",)))),
    Case("kafka-endless-body", Kafka(on("endless"), Fails("download", ("larger than", "limit")))),
    Case("kafka-slow-drip", Kafka(on("drip"), Fails("download", ("longer than", "too slow"), within_s=45))),
    Case("kafka-gzip-bomb", Kafka(on("bomb"), Fails("download", ("compressed",)))),
    Case("kafka-csv-no-date-column", Kafka(lambda u: config(u, "no-date.csv") | {"input_parameters": {
        "source_data_url": u("no-date.csv"), "index_column_name": "date", "frequency": "MS"}},
        Fails("data", ("no date column", "date")))),
    Case("kafka-csv-unparseable-dates", Kafka(on("bad-dates.csv"), Fails("data", ("cannot parse", "as a date")))),
    Case("kafka-csv-all-nan", Kafka(on("all-nan.csv"), Fails("data", ("no usable series", "NaN")))),
    Case("kafka-csv-one-row", Kafka(on("one-row.csv"), Fails("data", ("only 1",)))),
    Case("kafka-csv-duplicate-dates", Kafka(on("duplicates.csv"), Answers(("walk",)))),
    Case("kafka-csv-mixed-types", Kafka(on("mixed.csv", ["walk", "trend"]), Answers(
        ("trend",), failed={"walk": ("non-numeric", "abc")}))),
    Case("kafka-odd-unicode-slash-space-1000-char-series", Kafka(on("odd-names.csv", ODD_NAMES),
                                                                 Answers(tuple(ODD_NAMES)))),
    Case("kafka-odd-names-uploaded-csv", Kafka(lambda u: config(u, "upload", ODD_NAMES[:3]),
                                               Answers(tuple(ODD_NAMES[:3])), csv=FILES["odd-names.csv"])),
    Case("kafka-request-id-with-slash", Kafka(lambda u: json.dumps(config(u)).encode(),
                                              Fails("request_id", ("not valid", "a/b")), key="a/b")),
    Case("kafka-request-id-with-spaces", Kafka(lambda u: json.dumps(config(u)).encode(),
                                               Fails("request_id", ("not valid",)), key="my request")),
    Case("kafka-request-id-1000-chars", Kafka(lambda u: json.dumps(config(u)).encode(),
                                              Fails("request_id", ("not valid", "characters)")), key="k" * 1000)),
]

POISON_CASES = [
    Case(f"poison-{payload}-on-{topic}", Poison(topic, payload, DeadLetter(words, sender_told=topic == "configs")))
    for topic in ("configs", "datasets", "predictions")
    for payload, words in (("random", ("neither Avro nor JSON",) if topic == "configs" else ("not an Avro",)),
                           ("truncated", ("does not decode",)), ("too_new", ("unknown writer schema",)))
] + [
    Case(f"poison-{payload}-on-{topic}", Poison(topic, payload, Skipped()))
    for topic in ("best-models", "failures", "progress")
    for payload in ("random", "truncated", "too_new")
]

CASES = HTTP_CASES + KAFKA_CASES + POISON_CASES
