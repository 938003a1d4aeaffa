"""`timex-stream`: bring the local stack up, run one service, manage the embedded broker."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys

from timex_stream.settings import Settings


def _cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from timex_stream.stack import run_up

    return run_up(settings)


def _cmd_service(args: argparse.Namespace, settings: Settings) -> int:
    from timex_stream.stack import service_specs

    specs = {s.name: s for s in service_specs(settings)}
    module = importlib.import_module(specs[args.name].module)
    return int(module.main(settings) or 0)


def _cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from timex_stream.broker import EmbeddedKafka, ensure_jars

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
    from timex_stream.kafka import admin, ensure_topics

    if not settings.bootstrap_servers:
        print("KAFKA_BOOTSTRAP_SERVERS is not set", file=sys.stderr)
        return 2
    created = ensure_topics(settings.bootstrap_servers)
    for name, meta in sorted(admin(settings.bootstrap_servers).list_topics(timeout=10).topics.items()):
        print(f"{name}\t{len(meta.partitions)}\t{'created' if name in created else ''}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="timex-stream", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the embedded broker and every service; Ctrl-C stops all")
    s = sub.add_parser("service", help="run one service in the foreground")
    s.add_argument("name", choices=["ingestion", "predictor", "validator", "gateway", "webapp"])
    b = sub.add_parser("broker", help="run only the embedded Kafka broker")
    b.add_argument("--port", type=int, default=9092)
    b.add_argument("--fetch-only", action="store_true", help="only fetch the broker jars (once) and exit")
    sub.add_parser("topics", help="create the catalogue topics on KAFKA_BOOTSTRAP_SERVERS and list them")
    return p


COMMANDS = {"up": _cmd_up, "service": _cmd_service, "broker": _cmd_broker, "topics": _cmd_topics}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args, Settings.from_env())


if __name__ == "__main__":
    sys.exit(main())
