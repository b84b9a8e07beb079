"""Node processes for multi-process tests: ``python tests/workers.py ROLE ...``.

Each role is a separate Python process, as a node of a farm would be. They report through
files (one line per event, flushed) so that a SIGKILL loses nothing the test relies on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from netfs import wait_for

import fsevents

#: Seconds added to this process's clock (the clock-skew tests run nodes 10 minutes apart).
CLOCK_OFFSET_ENV = "FSEVENTS_TEST_CLOCK_OFFSET"


def _clock() -> float:
    return time.time() + float(os.environ.get(CLOCK_OFFSET_ENV, "0"))


def _start(text: str) -> str | dict[str, int]:
    """``now``, ``beginning``, or a JSON position such as ``{"web1": 0}``."""
    return json.loads(text) if text.startswith("{") else text


def _limit(text: str) -> float | None:
    return None if text == "none" else float(text)


def _append(out: Path, line: str) -> None:
    with open(out, "ab+") as fh:  # reads anywhere, writes always at the end
        # A SIGKILL can cut a write(2) between pages, leaving a partial last line: end it,
        # so that this record does not merge with it (readers skip the fragment).
        end = fh.seek(0, os.SEEK_END)
        if end and (fh.seek(end - 1), fh.read(1))[1] != b"\n":
            fh.write(b"\n")
        fh.write(line.encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def publish(args: argparse.Namespace) -> int:
    """Publish COUNT events; record each id in ACKS once publish() has returned."""
    bus = fsevents.Bus(args.root, node=args.node, poll_interval=args.poll_interval, clock=_clock)
    if args.start_file:
        wait_for(Path(args.start_file).exists, 120, what="the start file")
    pace = threading.Event()
    for first in range(0, args.count, args.batch):
        batch = range(first, min(first + args.batch, args.count))
        events = bus.publish_many((args.topic, {"i": i, "pid": os.getpid()}) for i in batch)
        if args.acks:
            _append(Path(args.acks), "\n".join(e.id for e in events))
        if args.interval:
            pace.wait(args.interval)  # a node publishing now and then, not in a burst
    bus.close()
    return 0


def follow(args: argparse.Namespace) -> int:
    """Record every event received; exit 0 after EXPECTED events (or run until killed)."""
    done = threading.Event()
    count = 0

    def on_event(event: fsevents.Event) -> None:
        nonlocal count
        _append(
            Path(args.out),
            json.dumps(
                {
                    "id": event.id,
                    "stream": event.stream,
                    "seq": event.seq,
                    "data": event.data,
                    "time": event.time,
                    "received": time.time(),
                    "pid": os.getpid(),
                }
            ),
        )
        count += 1
        if args.handler_delay:
            time.sleep(args.handler_delay)  # a slow handler, so a SIGKILL lands mid-batch
        if args.expected and count >= args.expected:
            done.set()

    bus = fsevents.Bus(
        args.root,
        node=args.node,
        consumer=args.consumer,
        poll_interval=args.poll_interval,
        watch=not args.no_watch,
        batch_size=args.batch_size,
        start=_start(args.start),
        scan_interval=args.scan_interval,
        retention_age=_limit(args.retention_age),
        prune_interval=args.prune_interval,
        clock=_clock,
    )
    bus.subscribe("*", on_event)
    with bus:
        if args.ready:
            Path(args.ready).write_text(str(os.getpid()))
        done.wait(args.timeout)
    return 0 if done.is_set() or not args.expected else 1


def signals(args: argparse.Namespace) -> int:
    """Record every signal key this process runs; optionally trigger "from-<name>" once."""
    bus = fsevents.Bus(args.root, node=args.node, poll_interval=args.poll_interval)
    sigs = fsevents.Signals(bus)
    done = threading.Event()
    count = 0

    @sigs.on_any
    def record(key: str) -> None:
        nonlocal count
        _append(Path(args.out), key)
        count += 1
        if count >= args.expected:
            done.set()

    with bus:
        Path(args.ready).write_text(str(os.getpid()))
        if args.trigger_after:
            wait_for(Path(args.trigger_after).exists, 120, what="the trigger file")
            sigs.trigger(f"from-{Path(args.out).stem}")
        done.wait(args.timeout)
    return 0 if done.is_set() else 1


def fork(args: argparse.Namespace) -> int:
    """Start a Bus, then fork: parent and child must each receive the next event.

    Each records "<pid> <topic>" in OUT and "<pid>" in READY once its follower runs.
    """
    bus = fsevents.Bus(args.root, node=args.node, poll_interval=args.poll_interval)
    got = threading.Event()

    def record(event: fsevents.Event) -> None:
        _append(Path(args.out), f"{os.getpid()} {event.topic}")
        got.set()

    bus.subscribe("*", record)
    bus.start()  # the parent's follower runs before the fork, as in a preloading master
    child = os.fork()
    bus.start()  # in the child: a new follower; in the parent: already running
    _append(Path(args.ready), str(os.getpid()))
    received = got.wait(args.timeout)
    if child == 0:
        os._exit(0 if received else 1)
    _, status = os.waitpid(child, 0)
    bus.close()
    return 0 if received and os.waitstatus_to_exitcode(status) == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="role", required=True)
    p = sub.add_parser("publish")
    p.add_argument("root")
    p.add_argument("node")
    p.add_argument("count", type=int)
    p.add_argument("--topic", default="test.event")
    p.add_argument("--acks")
    p.add_argument("--start-file")
    p.add_argument("--batch", type=int, default=1, help="events per publish_many call")
    p.add_argument("--poll-interval", type=float, default=0.1)
    p.add_argument("--interval", type=float, default=0.0, help="seconds between publishes")
    p.set_defaults(run=publish)
    f = sub.add_parser("follow")
    f.add_argument("root")
    f.add_argument("node")
    f.add_argument("out")
    f.add_argument("--expected", type=int, default=0)
    f.add_argument("--consumer")
    f.add_argument("--start", default="now")
    f.add_argument("--ready")
    f.add_argument("--no-watch", action="store_true")
    f.add_argument("--poll-interval", type=float, default=0.1)
    f.add_argument("--timeout", type=float, default=120.0)
    f.add_argument("--batch-size", type=int, default=1000)
    f.add_argument("--handler-delay", type=float, default=0.0)
    f.add_argument("--scan-interval", type=float, default=5.0)
    f.add_argument("--retention-age", default=str(7 * 86400))
    f.add_argument("--prune-interval", type=float, default=600.0)
    f.set_defaults(run=follow)
    s = sub.add_parser("signals")
    s.add_argument("root")
    s.add_argument("node")
    s.add_argument("out")
    s.add_argument("--ready", required=True)
    s.add_argument("--expected", type=int, default=1)
    s.add_argument("--trigger-after")
    s.add_argument("--poll-interval", type=float, default=0.1)
    s.add_argument("--timeout", type=float, default=60.0)
    s.set_defaults(run=signals)
    k = sub.add_parser("fork")
    k.add_argument("root")
    k.add_argument("node")
    k.add_argument("out")
    k.add_argument("ready")
    k.add_argument("--poll-interval", type=float, default=0.1)
    k.add_argument("--timeout", type=float, default=30.0)
    k.set_defaults(run=fork)
    args = parser.parse_args()
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
