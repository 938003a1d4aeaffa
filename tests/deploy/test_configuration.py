"""The README's table of environment variables is the code's: every variable Settings reads (its `VARIABLES`
table) and every request limit (`forecasting.limits`), with the default the code has and the meaning the table
gives, and no other; and each row of the table is what `Settings.from_env` reads."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from forecasting.limits import ENV_VARS as LIMIT_VARS
from forecasting.limits import RequestLimits
from timex_stream.runtime.settings import VARIABLES, Settings, documented, readme_table, shown

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_rows() -> list[str]:
    """The lines of the table under "## Configuration (environment variables)"."""
    section = README.read_text().split("## Configuration (environment variables)\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_every_settings_field_is_set_by_one_variable() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)} - {"limits"}  # the limits read their own variables
    assert sorted(v.field for v in VARIABLES) == sorted(fields)
    names = [v.name for v in VARIABLES] + list(LIMIT_VARS.values())
    assert len(names) == len(set(names))


def test_the_readme_names_every_variable_and_no_other() -> None:
    named = {name for line in readme_rows()[2:] for name in re.findall(r"`([A-Z_]+)`", line.split(" | ")[0])}
    assert named == {name for name, _, _ in documented()}


def test_the_readme_table_is_the_settings_table() -> None:
    readme, code = readme_rows(), readme_table()
    differ = [f"README: {a}\ncode:   {b}" for a, b in zip(readme, code, strict=False) if a != b]
    assert readme == code, "\n".join(differ[:3]) + "\n(`python -m timex_stream.runtime.settings` prints the table)"


def test_the_readme_defaults_are_the_code_defaults() -> None:
    # What the README shows for a plain default is that default; a shown text stands only for one the code
    # computes (from the machine, the home directory or another variable), which from_env({}) must agree with.
    defaults, read = Settings(), Settings.from_env({})
    assert read == dataclasses.replace(defaults, predictor_concurrency=read.predictor_concurrency)
    assert (read.data_dir, read.kafka_controller_port) == (read.cache_dir / "data", read.kafka_port + 1)
    assert read.gateway_url == f"http://{read.gateway_host}:{read.gateway_port}"
    shown_rows = {v.name for v in VARIABLES if v.shown is not None}
    assert shown_rows == {"TIMEX_CACHE_DIR", "TIMEX_DATA_DIR", "TIMEX_PREDICTOR_CONCURRENCY", "TIMEX_GATEWAY_URL"}
    rows = {name: default for name, default, _ in documented()}
    assert rows["TIMEX_VALIDATOR_DEADLINE_S"] == "900" and rows["TIMEX_DOWNLOAD_MAX_BYTES"] == "50 MiB"
    assert rows["TIMEX_MAX_SERIES"] == shown(RequestLimits().max_series) == "5000"
    assert rows["KAFKA_BOOTSTRAP_SERVERS"] == "unset: embedded broker"


def _parsable(parse: object) -> str:
    """A text the row's parser takes (numbers for the numeric ones)."""
    for raw in ("7", "x7"):
        try:
            parse(raw)  # type: ignore[operator]
        except ValueError:
            continue
        return raw
    raise AssertionError(parse)


def test_each_row_sets_its_field() -> None:
    unset = Settings.from_env({})
    for var in VARIABLES:
        raw = _parsable(var.parse)
        value = getattr(Settings.from_env({var.name: raw}), var.field)
        assert value != getattr(unset, var.field) and value == var.parse(raw), var.name


@pytest.mark.parametrize("raw", ["-1", "20"])
def test_a_niceness_outside_0_to_19_is_refused(raw: str) -> None:
    # a negative increment would need privileges the workers do not have: refused at start, not in a worker
    with pytest.raises(ValueError, match="from 0 to 19"):
        Settings.from_env({"TIMEX_UNIT_NICE": raw})
