"""``python -m fsevents bench``: run the phases on a target and print the figures."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .._version import __version__
from . import catchup, idle, latency, publish, report
from .common import Figure, Settings, fill, progress, remove_target

PHASES = ("publish", "latency", "catchup", "idle")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``bench`` on the CLI's subparsers (cli.py calls this)."""
    bench = sub.add_parser(
        "bench",
        parents=[common],
        help="measure what the target volume can carry, next to bare baselines",
        description="Measure throughput, latency, catch-up, idle cost and memory on --root "
        "(default: a new temp dir), each next to a bare baseline measured in the same run.",
    )
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bench.add_argument("--quick", action="store_true", help="a smoke run (under a minute)")
    bench.add_argument("--redis", metavar="URL", help="also measure Redis pub/sub and Streams")
    bench.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated subset of {','.join(PHASES)} (default: all; '' for none, "
        "e.g. with --redis)",
    )
    bench.add_argument(
        "--poll-interval", type=float, default=1.0, metavar="S", help="follower poll (default 1)"
    )
    bench.add_argument(
        "--latency-poll-interval",
        type=float,
        default=0.2,
        metavar="S",
        help="poll interval of the polling-only latency run (default 0.2)",
    )
    bench.add_argument(
        "--events",
        type=int,
        metavar="N",
        help="retained events for catch-up and idle (default 100000; --quick 5000)",
    )
    bench.add_argument(
        "--streams", type=int, default=20, metavar="N", help="streams (nodes) in them (default 20)"
    )
    bench.add_argument(
        "--idle-seconds",
        type=float,
        metavar="S",
        help="how long the idle follower is watched (default 30; --quick 3)",
    )
    bench.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        raise ValueError(f"unknown bench phase(s) {unknown}; choose from {', '.join(PHASES)}")
    with tempfile.TemporaryDirectory(prefix="fsevents-bench-") as scratch:
        target = args.root or os.path.join(scratch, "target")
        settings = Settings(
            target=target,
            scratch=Path(scratch),
            quick=args.quick,
            poll_interval=args.poll_interval,
            latency_poll_interval=args.latency_poll_interval,
            catchup_events=args.events or (5_000 if args.quick else 100_000),
            streams=args.streams,
            idle_seconds=args.idle_seconds or (3.0 if args.quick else 30.0),
        )
        info: dict[str, Any] = {
            "version": __version__,
            "target": target,
            "quick": args.quick,
            "machine": report.machine(target if args.root else scratch),
        }
        started = time.monotonic()
        figures = _run_phases(settings, phases, info)
        redis_status = None
        if args.redis:
            from . import redis_phase

            redis_figures, redis_status = redis_phase.run(settings, args.redis, figures)
            figures += redis_figures
        info["seconds"] = round(time.monotonic() - started, 1)
        info["load_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(report.to_json(figures, info, redis_status), indent=2))
    else:
        print(report.table(figures, info, redis_status))
    return 0


def _run_phases(settings: Settings, phases: list[str], info: dict[str, Any]) -> list[Figure]:
    kind = publish.store_kind(settings)
    info["store"] = kind
    figures: list[Figure] = []
    if "publish" in phases:
        figures += publish.run(settings, kind)
    if "latency" in phases:
        figures += latency.run(settings)
    if "catchup" in phases or "idle" in phases:
        big = settings.phase_target("retained")
        try:
            _fill_big(settings, big)
            if "catchup" in phases:
                figures += catchup.run(settings, big, kind)
            if "idle" in phases:
                figures += idle.run(settings, big)
        finally:
            remove_target(big)
    return figures


def _fill_big(settings: Settings, target: str) -> None:
    from ..stores import open_store

    total, streams = settings.catchup_events, settings.streams
    progress(f"writing {total} events over {streams} streams (not measured, no fsync)")
    with open_store(target, state_dir=settings.state_dir("fill"), fsync=False) as store:
        fill(store, streams, total)
