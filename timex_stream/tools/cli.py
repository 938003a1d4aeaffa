"""`timex-stream`: bring the local stack up, run one service, manage the embedded broker; submit configs
straight to Kafka, watch requests, fetch results, replay topics to re-forecast, compare two requests."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from confluent_kafka import KafkaException

from timex_stream.runtime.settings import Settings

if TYPE_CHECKING:
    from timex_stream.runtime.request_view import RequestView

# Where `make up` / `timex-stream up` runs the embedded broker when KAFKA_BOOTSTRAP_SERVERS is unset.
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
# Exit codes of the request commands: the request failed (or nothing matched); still running at the timeout.
EXIT_FAILED, EXIT_USAGE, EXIT_PENDING = 1, 2, 3


def _cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from timex_stream.tools.stack import run_up

    try:
        code = run_up(settings, brokers=args.brokers)
    except BaseException:  # noqa: BLE001 - shown, then the same hard exit: nothing may keep `up` hanging
        traceback.print_exc()
        code = 1
    # Everything `up` started is stopped by now. Exit at once: a librdkafka handle left over from the
    # readiness checks can block interpreter shutdown for minutes once the broker is gone.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _cmd_service(args: argparse.Namespace, settings: Settings) -> int:
    from timex_stream.runtime.logs import redact_in_logs
    from timex_stream.tools.stack import service_specs

    redact_in_logs(settings.kafka_sasl_password, settings.api_token)  # the gateway adds its API tokens
    specs = {s.name: s for s in service_specs(settings)}
    module = importlib.import_module(specs[args.name].module)
    return int(module.main(settings) or 0)


def _cmd_stop(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.keys import request_id_problem
    from timex_stream.runtime.kafka import producer
    from timex_stream.runtime.submit import stop_standing

    if request_id_problem(args.request_id):
        print(f"request id: {request_id_problem(args.request_id)}", file=sys.stderr)
        return EXIT_USAGE
    stop_standing(producer(_bootstrap(settings)), args.request_id)
    print(f"stopped {args.request_id}")
    return 0


def _cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from timex_stream.tools.broker import EmbeddedKafka, ensure_jars

    jars = ensure_jars(settings.cache_dir)
    if args.fetch_only:
        print(f"kafka jars: {jars}")
        return 0
    with EmbeddedKafka(settings.cache_dir, settings.data_dir / "kafka", port=args.port,
                       controller_port=args.port + 1) as broker:
        print(f"ready: kafka {broker.bootstrap_servers} (log {broker.log_file})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            broker.proc.wait()  # type: ignore[union-attr]
    return 0


def _cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from timex_stream.runtime.kafka import admin, ensure_topics

    if not settings.bootstrap_servers:
        print("KAFKA_BOOTSTRAP_SERVERS is not set", file=sys.stderr)
        return 2
    created = ensure_topics(settings.bootstrap_servers)
    for name, meta in sorted(admin(settings.bootstrap_servers).list_topics(timeout=10).topics.items()):
        print(f"{name}\t{len(meta.partitions)}\t{'created' if name in created else ''}")
    return 0


def _bootstrap(settings: Settings) -> str:
    return settings.bootstrap_servers or DEFAULT_BOOTSTRAP


def _exit_code(status: str) -> int:
    return {"done": 0, "failed": EXIT_FAILED}.get(status, EXIT_PENDING)


def _show(view: RequestView, output: str) -> int:
    from timex_stream.tools.render import dumps, result_document, results_table

    print(dumps(result_document(view)) if output == "json" else results_table(view))
    return _exit_code(view.status)


def _wait(bootstrap: str, request_id: str, timeout: float) -> RequestView:
    from timex_stream.tools.follow import follow
    from timex_stream.tools.render import ProgressBar

    bar = ProgressBar(request_id)
    try:
        return follow(bootstrap, [request_id], timeout, on_update=bar.update)[request_id]
    finally:
        bar.close()


def _cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.keys import request_id_problem
    from timex_stream.runtime.kafka import producer
    from timex_stream.runtime.submit import name_upload_source, submit

    if args.request_id is not None and request_id_problem(args.request_id):
        print(f"--request-id: {request_id_problem(args.request_id)}", file=sys.stderr)
        return EXIT_USAGE
    text = sys.stdin.read() if args.config == "-" else Path(args.config).read_text(encoding="utf-8")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"{args.config}: not valid JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not isinstance(config, dict):
        print(f"{args.config}: a TIMEX config is a JSON object", file=sys.stderr)
        return EXIT_USAGE
    csv = Path(args.csv).read_bytes() if args.csv else None
    if args.csv:
        name_upload_source(config, Path(args.csv).name)
    bootstrap = _bootstrap(settings)
    rid = submit(producer(bootstrap), config, csv=csv, origin="cli", request_id=args.request_id)
    if not args.wait:
        print(json.dumps({"request_id": rid}) if args.output == "json" else rid)
        return 0
    if args.output == "table":
        print(rid, flush=True)
    return _show(_wait(bootstrap, rid, args.timeout), args.output)


def _latest(bootstrap: str, since: str) -> str | None:
    from timex_stream.runtime.history import parse_time
    from timex_stream.tools.follow import snapshot

    views = [v for v in snapshot(bootstrap, since_ms=parse_time(since)).values() if v.first_at is not None]
    return max(views, key=lambda v: v.first_at or 0).request_id if views else None


def _cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    bootstrap = _bootstrap(settings)
    rid = _latest(bootstrap, args.since) if args.latest else args.request_id
    if not rid:
        print("give a request id, or --latest" if not args.latest else f"no request since {args.since}",
              file=sys.stderr)
        return EXIT_USAGE if not args.latest else EXIT_FAILED
    if args.output == "table":
        print(rid, flush=True)
    return _watch(bootstrap, rid, args.timeout, args.output)


def _watch(bootstrap: str, request_id: str, timeout: float | None, output: str) -> int:
    """Follow a request to its end and show its results; a live one: its first answer, then one line (json: one
    document) per revision as it comes, until it is stopped, Ctrl-C, or `timeout` (given: no limit)."""
    import time

    from timex_stream.tools.follow import follow
    from timex_stream.tools.render import ProgressBar, RevisionLines

    bar = ProgressBar(request_id)
    lines = RevisionLines(output)
    start = time.monotonic()
    answer_by = start + (timeout if timeout is not None else 3600)
    live_until = start + timeout if timeout is not None else float("inf")

    def until(views: dict[str, RequestView]) -> bool:
        view, now = views[request_id], time.monotonic()
        return (not view.done and now > answer_by) or (view.standing and view.done and now > live_until)

    def on_update(view: RequestView) -> None:
        if not view.done:
            bar.update(view)
        elif view.standing:
            bar.close()
            lines.show(view)

    try:
        view = follow(bootstrap, [request_id], float("inf"), on_update=on_update, until=until, live=True)[request_id]
    except KeyboardInterrupt:
        return 130  # the way to end following a live request
    finally:
        bar.close()
    if not view.done:
        raise TimeoutError(f"no final answer within {answer_by - start:.0f} s: {request_id}: {view.status}")
    if not view.standing:
        return _show(view, output)
    lines.show(view)
    return EXIT_FAILED if view.status == "failed" else 0


def _cmd_results(args: argparse.Namespace, settings: Settings) -> int:
    from timex_stream.runtime.results import results_csv
    from timex_stream.tools.follow import snapshot

    view = snapshot(_bootstrap(settings), [args.request_id])[args.request_id]
    if view.first_at is None:
        print(f"no record of request {args.request_id} on the result topics", file=sys.stderr)
        return EXIT_FAILED
    if args.format == "csv":
        print(results_csv(view.to_dict()), end="")
        if not view.done:
            print(f"request {args.request_id} is {view.status}: results so far", file=sys.stderr)
        return _exit_code(view.status)
    return _show(view, args.format)


def _cmd_requests(args: argparse.Namespace, settings: Settings) -> int:
    from timex_stream.runtime.history import parse_time
    from timex_stream.tools.follow import snapshot
    from timex_stream.tools.render import dumps, requests_table

    views = sorted((v for v in snapshot(_bootstrap(settings), since_ms=parse_time(args.since)).values()
                    if v.first_at is not None), key=lambda v: v.first_at or 0)[-args.limit:]
    if args.output == "json":
        print(dumps([{k: v.to_dict()[k] for k in ("request_id", "title", "status", "replay_of", "series",
                                                  "first_at", "last_at")} for v in views]))
    else:
        print(requests_table(views))
    return 0


def _cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from timex_stream.runtime.history import format_ms, parse_time
    from timex_stream.runtime.kafka import producer
    from timex_stream.tools.render import dumps, table
    from timex_stream.tools.replay import replay_configs, replay_datasets

    bootstrap = _bootstrap(settings)
    start, end = parse_time(args.start), (parse_time(args.end) if args.end else None)
    replay = replay_configs if args.topic == "configs" else replay_datasets
    done = replay(bootstrap, producer(bootstrap), start, end, request_ids=args.request, sets=args.set or [],
                  dry_run=args.dry_run)
    if args.output == "json":
        print(dumps([dataclasses.asdict(r) for r in done]))
    elif done:
        rows = [[r.original_id, r.new_id, format_ms(r.at), r.title] for r in done]
        if args.dry_run:
            print(table(["would replay", "at (UTC)", "title"], [[row[0], *row[2:]] for row in rows]))
        else:
            print(table(["original", "replayed as", "at (UTC)", "title"], rows))
    if not done:
        print(f"nothing on '{args.topic}' between {format_ms(start)} and {format_ms(end) if end else 'now'}"
              + (f" for {', '.join(args.request)}" if args.request else ""), file=sys.stderr)
    return 0 if done else EXIT_FAILED


def _cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from timex_stream.tools.compare import compare, comparison_table
    from timex_stream.tools.follow import snapshot
    from timex_stream.tools.render import dumps

    views = snapshot(_bootstrap(settings), [args.old, args.new])
    missing = [rid for rid, v in views.items() if v.first_at is None]
    if missing:
        print(f"no record of request {', '.join(missing)} on the result topics", file=sys.stderr)
        return EXIT_FAILED
    old, new = views[args.old], views[args.new]
    rows = compare(old, new)
    if args.output == "json":
        print(dumps({"old": old.request_id, "new": new.request_id, "old_status": old.status,
                     "new_status": new.status, "series": [r.to_dict() for r in rows]}))
    else:
        print(comparison_table(old, new, rows))
    return 0


def _time(text: str) -> str:
    from timex_stream.runtime.history import parse_time

    try:
        parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _assignment(text: str) -> str:
    from timex_stream.tools.replay import apply_sets

    try:
        apply_sets({}, [text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _add_output(p: argparse.ArgumentParser, flag: str = "--output",
                choices: tuple[str, ...] = ("table", "json")) -> None:
    p.add_argument(flag, choices=choices, default="table", help="default: table")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="timex-stream", description=__doc__, epilog=(
        f"submit, watch, results, requests, replay and compare talk to KAFKA_BOOTSTRAP_SERVERS (default "
        f"{DEFAULT_BOOTSTRAP}, the broker of `timex-stream up`). TIME: ISO 8601 (2026-11-24T07:00, "
        "2026-11-24; UTC unless an offset like +02:00 is given) or relative (-30m, -2h, -7d)."))
    sub = p.add_subparsers(dest="command", required=True)
    u = sub.add_parser("up", help="start the embedded broker and every service; Ctrl-C stops all")
    u.add_argument("--brokers", type=int, default=1, choices=range(1, 10), metavar="N",
                   help="a local KRaft cluster of N brokers (default 1; 3 or more: replication factor 3, "
                        "min.insync.replicas 2); its data dir is kafka-N beside kafka")
    s = sub.add_parser("service", help="run one service in the foreground")
    s.add_argument("name", choices=["ingestion", "predictor", "validator", "live", "gateway", "webapp"])
    b = sub.add_parser("broker", help="run only the embedded Kafka broker")
    b.add_argument("--port", type=int, default=9092)
    b.add_argument("--fetch-only", action="store_true", help="only fetch the broker jars (once) and exit")
    sub.add_parser("topics", help="create the catalogue topics on KAFKA_BOOTSTRAP_SERVERS and list them")
    _request_commands(sub)
    return p


def _request_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("submit", help="produce a TIMEX config to 'configs'; prints the request id")
    s.add_argument("config", help="TIMEX JSON config file, or - for stdin")
    s.add_argument("--csv", help="send this CSV with the request instead of downloading source_data_url")
    s.add_argument("--request-id", help="the request id to use (default: a new random one); letters, digits "
                   "and . _ : - only, at most 128")
    s.add_argument("--wait", action="store_true", help="show progress, then the best model per series")
    s.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits (default 3600)")
    _add_output(s)
    w = sub.add_parser("watch", help="follow a request to its end, then show its results; a live one: then one "
                       "line per revision (series, revision, last point, next-step forecast, rolling error) until "
                       "it is stopped or Ctrl-C")
    w.add_argument("request_id", nargs="?")
    w.add_argument("--latest", action="store_true", help="the request accepted last (since --since)")
    w.add_argument("--since", type=_time, default="-1d", help="how far back --latest looks (default -1d)")
    w.add_argument("--timeout", type=float, help="seconds to wait for the answer (default 3600); a live request "
                   "is followed this long (default: until it is stopped)")
    _add_output(w)
    r = sub.add_parser("results", help="what is known of a request now, without waiting")
    r.add_argument("request_id")
    _add_output(r, "--format", ("table", "json", "csv"))
    q = sub.add_parser("requests", help="recent requests with time, status and title")
    q.add_argument("--since", type=_time, default="-1d", help="TIME (default -1d)")
    q.add_argument("--limit", type=int, default=50, help="show the last N (default 50)")
    _add_output(q)
    p = sub.add_parser("replay", help="re-forecast what a topic received in a time range")
    p.add_argument("--topic", choices=["configs", "datasets"], default="configs",
                   help="configs: resubmit (downloads again); datasets: same data, re-planned (no download)")
    p.add_argument("--from", dest="start", type=_time, required=True,
                   help="TIME, inclusive: 2026-11-24T07:00, -2h, ...")
    p.add_argument("--to", dest="end", type=_time, help="TIME, exclusive (default: now)")
    p.add_argument("--request", action="append", help="only this original request id (repeatable)")
    p.add_argument("--set", action="append", type=_assignment, metavar="PATH=VALUE",
                   help="edit the config, e.g. model_parameters.models=arima,fbprophet (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="list what would be replayed; produce nothing")
    _add_output(p)
    t = sub.add_parser("stop", help="end a live (standing) request: its forecasts stop updating, the last stays")
    t.add_argument("request_id")
    c = sub.add_parser("compare", help="two requests side by side, and the old forecast's error on new data")
    c.add_argument("old")
    c.add_argument("new")
    _add_output(c)


COMMANDS = {"up": _cmd_up, "service": _cmd_service, "broker": _cmd_broker, "topics": _cmd_topics,
            "submit": _cmd_submit, "watch": _cmd_watch, "results": _cmd_results, "requests": _cmd_requests,
            "replay": _cmd_replay, "compare": _cmd_compare, "stop": _cmd_stop}


TIME_OPTIONS = ("--from", "--to", "--since")


def _glue_relative_times(argv: list[str]) -> list[str]:
    """`--from -2h` → `--from=-2h`: argparse would take `-2h` for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in TIME_OPTIONS and arg[:1] == "-" and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_glue_relative_times(sys.argv[1:] if argv is None else argv))
    try:
        return COMMANDS[args.command](args, Settings.from_env())
    except (OSError, KafkaException) as exc:  # unreadable file, unreachable broker: say so, no traceback
        print(f"timex-stream {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TimeoutError as exc:
        print(f"timex-stream {args.command}: {exc}", file=sys.stderr)
        return EXIT_PENDING


if __name__ == "__main__":
    sys.exit(main())
