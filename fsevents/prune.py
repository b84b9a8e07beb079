"""``fsevents prune``: apply the retention once (the follower thread does it periodically)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .retention import (
    DEFAULT_PRUNE_INTERVAL,
    DEFAULT_RETENTION_AGE,
    DEFAULT_RETENTION_COUNT,
    DEFAULT_TMP_MAX_AGE,
)


def add_retention_options(parser: argparse.ArgumentParser, *, interval: bool) -> None:
    parser.add_argument(
        "--retention-age",
        type=_seconds_or_none,
        default=DEFAULT_RETENTION_AGE,
        metavar="S|none",
        help=f"remove events older than S seconds (default {DEFAULT_RETENTION_AGE:.0f}: 7 days)",
    )
    parser.add_argument(
        "--retention-count",
        type=_count_or_none,
        default=DEFAULT_RETENTION_COUNT,
        metavar="N|none",
        help=f"keep at most N events per stream (default {DEFAULT_RETENTION_COUNT})",
    )
    parser.add_argument(
        "--tmp-max-age",
        type=_seconds,
        default=DEFAULT_TMP_MAX_AGE,
        metavar="S",
        help="remove temp files of crashed publishers older than S seconds "
        f"(default {DEFAULT_TMP_MAX_AGE:.0f})",
    )
    if interval:
        parser.add_argument(
            "--prune-interval",
            type=_seconds,
            default=DEFAULT_PRUNE_INTERVAL,
            metavar="S",
            help=f"seconds between prunes of this node's stream ({DEFAULT_PRUNE_INTERVAL:.0f})",
        )


def retention_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Bus keyword arguments the retention flags stand for."""
    options = {
        "retention_age": args.retention_age,
        "retention_count": args.retention_count,
        "tmp_max_age": args.tmp_max_age,
    }
    if getattr(args, "prune_interval", None) is not None:
        options["prune_interval"] = args.prune_interval
    return options


def cmd_prune(args: argparse.Namespace) -> int:
    from .bus import Bus

    bus = Bus(
        args.root,
        node=args.node,
        state_dir=args.state_dir,
        create=args.create,
        **retention_options(args),
    )
    try:
        report = bus.prune()
    finally:
        bus.close()
    assert report is not None  # prune(wait=True) always runs
    if args.json:
        print(json.dumps({"node": bus.node, **report.to_json()}))
        return 0
    removed = report.removed.get(bus.node, 0)
    print(f"stream {bus.node!r}: removed {removed} event(s)")
    for stream in report.removed_streams:
        print(f"stream {stream!r}: removed (node silent longer than the retention age)")
    if report.removed_tmp:
        print(f"tmp/: removed {report.removed_tmp} stale temp file(s)")
    return 0


def _seconds_or_none(text: str) -> float | None:
    if text.lower() == "none":
        return None
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0 or 'none', got {text}")
    return value


def _seconds(text: str) -> float:
    value = _seconds_or_none(text)
    if value is None:
        raise argparse.ArgumentTypeError("must be a number of seconds > 0")
    return value


def _count_or_none(text: str) -> int | None:
    if text.lower() == "none":
        return None
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 or 'none', got {text}")
    return value


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``prune`` to the CLI's subcommands."""
    prune = sub.add_parser("prune", parents=[common], help="apply the retention once")
    add_retention_options(prune, interval=False)
    prune.add_argument("--json", action="store_true", help="print the report as JSON")
    prune.set_defaults(run=cmd_prune)
