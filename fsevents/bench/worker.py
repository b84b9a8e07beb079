"""The processes a bench measures: ``python -m fsevents.bench.worker MODE [options]``.

Protocol with the parent (common.Worker): one JSON line on stdout when set up ("ready"),
then wait for a line on stdin ("go") so that several workers start together, then one JSON
result line. Times are ``time.monotonic()``: CLOCK_MONOTONIC on Linux, one clock for every
process of the machine, so a publisher's stamp and a follower's receipt compare directly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..bus import Bus
from ..event import Event
from .baselines import BareFiles, read_files_in_order


def _say(doc: dict[str, Any]) -> None:
    print(json.dumps(doc), flush=True)


def _ready_then_wait(**doc: Any) -> None:
    _say({"ready": True, **doc})
    sys.stdin.readline()


def peak_rss_kb() -> int:
    """VmHWM: the highest resident set size this process reached (Linux /proc)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def _cpu_seconds() -> float:
    # CLOCK_PROCESS_CPUTIME_ID: every thread, nanosecond resolution (os.times counts 10 ms
    # ticks, too coarse for an idle follower over a few seconds).
    return time.process_time()


def publish(args: argparse.Namespace) -> None:
    bus = Bus(args.target, node=args.node, watch=False, fsync=not args.no_fsync)
    bus.publish("bench.warmup")  # claims the node and writes its heartbeat: not measured
    _ready_then_wait()
    started = time.monotonic()
    for i in range(0, args.count, args.batch):
        if args.batch == 1:
            bus.publish("bench.event", {"key": "products", "i": i})
        else:
            bus.publish_many(
                ("bench.event", {"key": "products", "i": i + j}) for j in range(args.batch)
            )
    _say({"start": started, "end": time.monotonic(), "count": args.count})
    bus.close()


def bare_publish(args: argparse.Namespace) -> None:
    bare = BareFiles(Path(args.dir), fsync_dir=not args.no_dir_fsync, name=args.name)
    _ready_then_wait()
    started = time.monotonic()
    for _ in range(0, args.count, args.batch):
        bare.publish_many(args.batch)
    _say({"start": started, "end": time.monotonic(), "count": args.count})


def follow(args: argparse.Namespace) -> None:
    """Receive COUNT events through a Bus; report each one's publish-to-handler latency."""
    latencies: list[float] = []
    done = threading.Event()

    def on_event(event: Event) -> None:
        latencies.append(time.monotonic() - event.data["t"])
        if len(latencies) >= args.count:
            done.set()

    bus = Bus(
        args.target,
        node="bench-follower",
        watch=not args.no_watch,
        poll_interval=args.poll_interval,
    )
    bus.subscribe("bench.*", on_event)
    bus.start()
    _ready_then_wait()
    done.wait(args.timeout)
    bus.close()
    _say({"latencies": latencies})


def bare_follow(args: argparse.Namespace) -> None:
    """The floor: open the next file by name when woken by inotify or by a plain timer."""
    events_dir = Path(args.dir)
    latencies: list[float] = []
    wake = threading.Event()
    observer = None
    if not args.no_watch:
        from watchdog.events import FileCreatedEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        class Nudge(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                wake.set()

        observer = Observer()
        observer.schedule(Nudge(), str(events_dir), event_filter=[FileCreatedEvent])
        observer.start()
    _ready_then_wait()
    seq = 1
    deadline = time.monotonic() + args.timeout
    while len(latencies) < args.count and time.monotonic() < deadline:
        try:
            with open(events_dir / f"{seq:012d}.json", "rb") as fh:
                sent = json.loads(fh.read())["data"]["t"]
        except FileNotFoundError:
            wake.wait(args.poll_interval)
            wake.clear()
            continue
        latencies.append(time.monotonic() - sent)
        seq += 1
    if observer is not None:
        observer.stop()
        observer.join()
    _say({"latencies": latencies})


def catchup(args: argparse.Namespace) -> None:
    """A durable consumer replays everything from the beginning; report events/s and RSS."""
    received = 0
    done = threading.Event()

    def on_event(event: Event) -> None:
        nonlocal received
        received += 1
        if received >= args.count:
            done.set()

    bus = Bus(args.target, node="bench-catchup", consumer="bench", start="beginning")
    bus.subscribe("*", on_event)
    _ready_then_wait(rss_kb=peak_rss_kb())
    started = time.monotonic()
    bus.start()
    done.wait(args.timeout)
    elapsed = time.monotonic() - started
    peak = peak_rss_kb()
    bus.close()
    _say({"count": received, "seconds": elapsed, "peak_rss_kb": peak})


def bare_catchup(args: argparse.Namespace) -> None:
    _ready_then_wait(rss_kb=peak_rss_kb())
    started = time.monotonic()
    count = read_files_in_order(Path(args.dir), args.segment_size)
    _say({"count": count, "seconds": time.monotonic() - started, "peak_rss_kb": peak_rss_kb()})


def idle(args: argparse.Namespace) -> None:
    """A follower with nothing to do: CPU seconds it burns over SECONDS of waiting."""
    bus = Bus(args.target, node="bench-idle", poll_interval=args.poll_interval)
    bus.start()
    _ready_then_wait()
    before, started = _cpu_seconds(), time.monotonic()
    time.sleep(args.seconds)
    cpu, wall = _cpu_seconds() - before, time.monotonic() - started
    bus.close()
    _say({"cpu_seconds": cpu, "wall_seconds": wall})


def bare_idle(args: argparse.Namespace) -> None:
    """The floor of an idle follower: one failed open per stream per poll interval."""
    names = [f"{args.dir}/node{s:02d}/missing.json" for s in range(args.streams)]
    _ready_then_wait()
    before, started = _cpu_seconds(), time.monotonic()
    while time.monotonic() - started < args.seconds:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.close(os.open(name, os.O_RDONLY))
        time.sleep(args.poll_interval)
    _say({"cpu_seconds": _cpu_seconds() - before, "wall_seconds": time.monotonic() - started})


def _redis_follow(args: argparse.Namespace) -> None:
    from .redis_phase import follow as redis_follow  # the optional redis client, only here

    redis_follow(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fsevents.bench.worker")
    sub = parser.add_subparsers(dest="mode", required=True)
    modes = {
        "publish": publish,
        "bare-publish": bare_publish,
        "follow": follow,
        "bare-follow": bare_follow,
        "catchup": catchup,
        "bare-catchup": bare_catchup,
        "idle": idle,
        "bare-idle": bare_idle,
        "redis-follow": _redis_follow,
    }
    for name, run in modes.items():
        mode = sub.add_parser(name)
        mode.set_defaults(run=run)
        mode.add_argument("--target", help="store target (Bus modes)")
        mode.add_argument("--dir", help="directory (bare modes)")
        mode.add_argument("--node", default="bench")
        mode.add_argument("--name", default="bare")
        mode.add_argument("--count", type=int, default=1000)
        mode.add_argument("--batch", type=int, default=1)
        mode.add_argument("--no-fsync", action="store_true")
        mode.add_argument("--no-dir-fsync", action="store_true")
        mode.add_argument("--no-watch", action="store_true")
        mode.add_argument("--poll-interval", type=float, default=1.0)
        mode.add_argument("--timeout", type=float, default=120.0)
        mode.add_argument("--seconds", type=float, default=10.0)
        mode.add_argument("--streams", type=int, default=20)
        mode.add_argument("--segment-size", type=int, default=1000)
        mode.add_argument("--url", help="redis URL (redis modes)")
        mode.add_argument("--kind", choices=["pubsub", "streams"], default="pubsub")
        mode.add_argument("--key", default="fsevents-bench")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
