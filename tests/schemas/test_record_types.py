"""Every Avro record (`schemas/*.avsc`, nested records too) has its TypedDict in `schemas.records`, with the same
field names and compatible types (a union with null ↔ `X | None`, an enum ↔ a `Literal`), so they cannot drift."""

from __future__ import annotations

import functools
import json
import operator
import typing
from pathlib import Path
from typing import Any, Literal, TypedDict

from schemas.codec import SCHEMA_DIR
from schemas.records import BY_RECORD, TimestampMicros, TimestampMillis

PRIMITIVES: dict[str, Any] = {"string": str, "int": int, "long": int, "double": float, "float": float,
                              "boolean": bool, "bytes": bytes, "null": type(None)}
LOGICAL: dict[str, Any] = {"timestamp-millis": TimestampMillis, "timestamp-micros": TimestampMicros}


def named_types(schema_dir: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    """Every named record and enum of the current schemas (top level and nested), by short name."""
    found: dict[str, dict[str, Any]] = {}

    def walk(avro: Any) -> None:
        if isinstance(avro, list):
            for member in avro:
                walk(member)
        elif isinstance(avro, dict):
            if avro["type"] in ("record", "enum"):
                found[avro["name"].rsplit(".", 1)[-1]] = avro
            for field in avro.get("fields", ()):
                walk(field["type"])
            for key in ("items", "values"):
                if key in avro:
                    walk(avro[key])

    for path in sorted(schema_dir.glob("*.avsc")):
        walk(json.loads(path.read_text()))
    return found


def python_type(avro: Any, named: dict[str, dict[str, Any]], types: dict[str, Any]) -> Any:
    """The Python type a field of Avro type `avro` must be annotated with."""
    if isinstance(avro, list):
        return functools.reduce(operator.or_, [python_type(m, named, types) for m in avro])
    if isinstance(avro, str):
        if avro in PRIMITIVES:
            return PRIMITIVES[avro]
        return python_type(named[avro.rsplit(".", 1)[-1]], named, types)
    kind = avro["type"]
    if "logicalType" in avro:
        return LOGICAL[avro["logicalType"]]
    if kind == "array":
        return list[python_type(avro["items"], named, types)]  # type: ignore[misc]
    if kind == "map":
        return dict[str, python_type(avro["values"], named, types)]  # type: ignore[misc]
    if kind == "enum":
        return Literal[tuple(avro["symbols"])]
    if kind == "record":
        return types.get(avro["name"].rsplit(".", 1)[-1], f"no type for {avro['name']}")
    return python_type(kind, named, types)  # {"type": "string"} and the like


def mismatches(avro: dict[str, Any], typed: type, named: dict[str, dict[str, Any]],
               types: dict[str, Any]) -> list[str]:
    """How the TypedDict `typed` differs from the record schema `avro` (empty: it matches)."""
    hints = typing.get_type_hints(typed)
    fields = {f["name"]: f["type"] for f in avro["fields"]}
    found = [f"{name}: no such field in {avro['name']}" for name in hints.keys() - fields.keys()]
    found += [f"{name}: missing" for name in fields.keys() - hints.keys()]
    found += [f"{name}: not required (a decoded record has every field)"
              for name in fields.keys() - typed.__required_keys__]  # type: ignore[attr-defined]
    for name in fields.keys() & hints.keys():
        want = python_type(fields[name], named, types)
        if hints[name] != want:
            found.append(f"{name}: {hints[name]} where the schema says {want}")
    return found


def test_every_record_has_a_type_and_every_type_a_record() -> None:
    records = {name for name, avro in named_types().items() if avro["type"] == "record"}
    assert records == set(BY_RECORD)


def test_every_type_has_the_fields_and_types_of_its_schema() -> None:
    named = named_types()
    problems = {name: mismatches(named[name], typed, named, BY_RECORD) for name, typed in BY_RECORD.items()}
    assert {name: p for name, p in problems.items() if p} == {}


def test_a_type_that_drifted_from_its_schema_is_caught() -> None:
    class FailureRecord(TypedDict):  # `detail` nullable dropped, `fatal` the wrong type, `extra` added
        request_id: str
        stage: str
        message: str
        series: str | None
        model: str | None
        fatal: int
        detail: str
        occurred_at: TimestampMillis
        extra: str

    named = named_types()
    found = mismatches(named["Failure"], FailureRecord, named, BY_RECORD)
    assert sorted(p.split(":")[0] for p in found) == ["detail", "extra", "fatal"]
    # Nested records are compared by type: a field pointing at another record's type is caught too.
    wrong_nested = {**BY_RECORD, "Forecast": BY_RECORD["Unit"]}
    assert any(p.startswith("forecast:") for p in mismatches(named["Prediction"], BY_RECORD["Prediction"],
                                                             named, wrong_nested))
    assert python_type({"type": "enum", "name": "E", "symbols": ["a", "b"]}, named, {}) == Literal["a", "b"]
