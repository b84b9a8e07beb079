"""``python -m fsevents``: publish and follow events from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from ._version import __version__
from .bus import ROOT_ENV, Bus, default_root
from .errors import FseventsError
from .event import DEFAULT_MAX_EVENT_SIZE, Event
from .nodes import NODE_ENV
from .prune import add_retention_options, retention_options
from .signing import KEY_FILE_ENV

EXIT_OK, EXIT_INCOMPLETE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(FseventsError):
    """A command-line argument is wrong (exit 2, one line)."""


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--root",
        metavar="TARGET",
        help=(
            "shared directory, or SQLite file (*.db, sqlite:///path.db?options) to use "
            f"(default: ${ROOT_ENV}, else {default_root()})"
        ),
    )
    common.add_argument("--node", help=f"this node's name (default: ${NODE_ENV}, else host name)")
    common.add_argument(
        "--state-dir",
        metavar="DIR",
        help="local state directory (default: $FSEVENTS_STATE_DIR, else per user)",
    )
    common.add_argument(
        "--key-file",
        metavar="FILE",
        help=f"farm key file: sign what is published, deliver only verified events "
        f"(default: ${KEY_FILE_ENV}, else unsigned)",
    )
    common.add_argument(
        "--file-mode",
        type=_octal_mode,
        metavar="MODE",
        help="mode of files created on the share, octal (default 644: the group reads them)",
    )
    common.add_argument(
        "--dir-mode",
        type=_octal_mode,
        metavar="MODE",
        help="mode of directories created on the share, octal (default 2775: setgid group)",
    )
    common.add_argument(
        "--no-create",
        dest="create",
        action="store_false",
        help="fail instead of creating a new root (production nodes: an unmounted volume "
        "is then an error, not a fresh local root)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    common.add_argument("--debug", action="store_true", help="debug logs and full tracebacks")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="fsevents",
        description="Broadcast events between processes through a shared directory.",
    )
    parser.add_argument("--version", action="version", version=f"fsevents {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    pub = sub.add_parser("publish", parents=[common], help="publish one event, print its id")
    pub.add_argument("topic", help="event topic, e.g. cache.invalidate")
    pub.add_argument(
        "data",
        nargs="?",
        default="null",
        help="JSON payload ('-' reads standard input; default null)",
    )
    pub.add_argument(
        "--no-fsync",
        dest="fsync",
        action="store_false",
        help="skip fsync (faster, not durable across power loss)",
    )
    _add_max_event_size(pub)
    pub.set_defaults(run=cmd_publish)

    tail = sub.add_parser("tail", parents=[common], help="print events as they arrive")
    tail.add_argument(
        "--topic",
        default="*",
        metavar="PATTERN",
        help="glob pattern of topics to show (default: all)",
    )
    tail.add_argument(
        "--from",
        dest="start",
        default="now",
        choices=["now", "beginning"],
        help="start with new events (now) or all retained ones (beginning)",
    )
    tail.add_argument(
        "--consumer",
        metavar="NAME",
        help="durable consumer: resume where the last run with this name stopped",
    )
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.add_argument("--count", type=_positive_int, metavar="N", help="exit 0 after N events")
    tail.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="stop after SECONDS (exit 1 if --count was not reached)",
    )
    tail.add_argument(
        "--no-watch",
        dest="watch",
        action="store_false",
        help="do not use the file watcher; rely on polling alone",
    )
    tail.add_argument(
        "--poll-interval",
        type=_positive_float,
        default=1.0,
        metavar="S",
        help="seconds between polls (default 1.0)",
    )
    tail.add_argument(
        "--scan-interval",
        type=_positive_float,
        default=5.0,
        metavar="S",
        help="seconds between scans for new nodes and holes (default 5.0)",
    )
    tail.add_argument(
        "--hole-timeout",
        type=_non_negative_float,
        default=30.0,
        metavar="S",
        help="seconds to wait for a missing event before skipping it (default 30)",
    )
    _add_max_event_size(tail)
    tail.add_argument(
        "--batch-size",
        type=_positive_int,
        default=1000,
        metavar="N",
        help="events per poll before a durable consumer's cursor is saved (default 1000)",
    )
    tail.add_argument(
        "--heartbeat-interval",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="seconds between this process's heartbeats in nodes/ (default 10)",
    )
    add_retention_options(tail, interval=True)
    tail.set_defaults(run=cmd_tail)

    from . import cli_settings

    cli_settings.register(sub, common)

    from . import doctor_cli, farm_status, prune

    prune.register(sub, common)
    farm_status.register(sub, common)
    doctor_cli.register(sub, common)

    from .bench.command import add_parser as add_bench_parser

    add_bench_parser(sub, common)
    return parser


def _add_max_event_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-event-size",
        type=_positive_int,
        default=DEFAULT_MAX_EVENT_SIZE,
        metavar="BYTES",
        help="largest event written or read; set it alike on every node "
        f"(default {DEFAULT_MAX_EVENT_SIZE})",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number > 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def _octal_mode(text: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an octal mode such as 644, got {text}") from None


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _bus(args: argparse.Namespace, **options: Any) -> Bus:
    return Bus(
        args.root,
        node=args.node,
        state_dir=args.state_dir,
        key_file=args.key_file,
        file_mode=args.file_mode,
        dir_mode=args.dir_mode,
        create=args.create,
        **options,
    )


def cmd_publish(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.data == "-" else args.data
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f'DATA is not valid JSON ({exc}); pass e.g. \'{{"key": "products"}}\', '
            "or quote a string as '\"text\"'"
        ) from None
    bus = _bus(args, fsync=args.fsync, max_event_size=args.max_event_size)
    try:
        event = bus.publish(args.topic, data)
    finally:
        bus.close()
    print(event.id)
    return EXIT_OK


def cmd_tail(args: argparse.Namespace) -> int:
    bus = _bus(
        args,
        watch=args.watch,
        poll_interval=args.poll_interval,
        scan_interval=args.scan_interval,
        hole_timeout=args.hole_timeout,
        max_event_size=args.max_event_size,
        batch_size=args.batch_size,
        heartbeat_interval=args.heartbeat_interval,
        consumer=args.consumer,
        start=args.start,
        **retention_options(args),
    )
    seen = 0
    print(
        f"fsevents: following {bus.store} as node {bus.node!r} (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    try:
        if args.consumer:
            seen = _tail_durable(bus, args)
        else:
            for event in bus.follow(args.topic, start=args.start, timeout=args.timeout):
                _print_event(event, args.json)
                seen += 1
                if args.count is not None and seen >= args.count:
                    break
    finally:
        bus.close()
    return EXIT_INCOMPLETE if args.count is not None and seen < args.count else EXIT_OK


def _tail_durable(bus: Bus, args: argparse.Namespace) -> int:
    """Follow through the Bus thread, so the consumer's cursor advances and survives."""
    import queue

    received: queue.Queue[Event] = queue.Queue()
    bus.subscribe(args.topic, received.put)
    bus.start()
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    seen = 0
    while args.count is None or seen < args.count:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            break
        try:
            event = received.get(timeout=remaining)
        except queue.Empty:
            break
        _print_event(event, args.json)
        seen += 1
    return seen


def _print_event(event: Event, as_json: bool) -> None:
    if as_json:
        line = json.dumps(event.to_dict(), ensure_ascii=False)
    else:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.time))
        millis = int(event.time % 1 * 1000)
        data = json.dumps(event.data, ensure_ascii=False)
        line = f"{stamp}.{millis:03d}  {event.id:<20}  {event.topic}  {data}"
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="fsevents: %(levelname)s: %(message)s")
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (`tail | head`): not an error
        return EXIT_OK
    except (FseventsError, ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"fsevents: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
