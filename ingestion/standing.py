"""A live request (a config with `input_parameters.source_topic`, forecasting.live) at the ingestion: checked,
then answered with its `standing` record (status active) for the live service to follow, and a progress
event saying how many points each series waits for. Nothing is fanned out here: the live service does that
once a series has `min_points` (live/service.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from forecasting.config import ConfigError, ParsedConfig
from forecasting.data import DataError, load_series
from forecasting.live.params import LiveRequest
from forecasting.live.window import Window
from ingestion.download import DownloadError
from timex_stream.runtime.fan_out import Outcome
from timex_stream.runtime.records import ACTIVE, failure, progress, standing_request

# Says why a source topic cannot be followed (it does not exist, it may not be read), None when it can.
TopicCheck = Callable[[str], str | None]
Fetch = Callable[[str], bytes]
# The history CSV travels in the standing record: it must fit a Kafka record with room for the config.
MAX_HISTORY_BYTES = 512 * 1024


@dataclass(frozen=True)
class LiveLimits:
    """What a live request may ask for at the ingestion (Settings: TIMEX_LIVE_*)."""

    max_window_points: int = 100_000
    max_series: int = 1_000  # the history CSV's series: refused here, at once, rather than left unfollowed


def standing(out: Outcome, parsed: ParsedConfig, request: dict[str, Any], live: LiveRequest, fetch: Fetch,
             check_topic: TopicCheck | None, limits: LiveLimits) -> Outcome:
    rid, config = out.request_id, parsed.config

    def fatal(stage: str, message: str) -> Outcome:
        out.failures.append(failure(rid, stage, message, fatal=True))
        return out

    frequency = config.input_parameters.frequency
    if not frequency:
        return fatal("config", "input_parameters.frequency: required for a live request (the grid its "
                               "observations fall on, e.g. D, h, 15min)")
    try:
        Window(frequency, live.live.window_points, live.live.lateness_points(frequency))
    except (ValueError, ConfigError) as exc:
        return fatal("config", f"input_parameters.frequency: {exc}")
    if live.live.window_points > limits.max_window_points:
        return fatal("limits", f"input_parameters.live_parameters.window_points is {live.live.window_points:,}; "
                               f"at most {limits.max_window_points:,} points are kept per live series "
                               "(TIMEX_LIVE_MAX_WINDOW_POINTS)")
    if check_topic is not None and (problem := check_topic(live.source_topic)):
        return fatal("source_topic", f"input_parameters.source_topic {live.source_topic!r}: {problem}")
    history = None
    if request.get("csv_data") or config.input_parameters.source_data_url:
        try:
            history = request.get("csv_data") or fetch(config.input_parameters.source_data_url or "")
            loaded = load_series(config, history)  # its errors now, not in the live service
        except DownloadError as exc:
            return fatal("download", str(exc))
        except DataError as exc:
            return fatal("data", str(exc))
        if len(loaded.series) > limits.max_series:
            return fatal("limits", f"the history CSV has {len(loaded.series):,} series; a live request follows at "
                                   f"most {limits.max_series:,} (TIMEX_LIVE_MAX_SERIES)")
        if len(history) > MAX_HISTORY_BYTES:
            return fatal("limits", f"the history CSV is {len(history):,} bytes; a live request's history may have "
                                   f"at most {MAX_HISTORY_BYTES:,} (the topic's records can extend it)")
    out.standing.append(standing_request(rid, config.to_json(), ACTIVE, owner=request.get("owner"),
                                         history_csv=history))
    out.progress.append(progress(rid, "standing", f"standing request: waiting for {live.live.min_points} points "
                                 f"per series on {live.source_topic!r}", title=config.activity_title,
                                 replay_of=request.get("replay_of")))
    return out
