"""Publish-to-handler latency between two processes, with the watcher and polling only.

The parent publishes, stamping each event with ``time.monotonic()`` just before the call
(so the figure includes the publish's own fsyncs); a follower process records the stamp's
age when its handler runs. The baseline is the floor on the same volume: a bare writer
(write + fsync + link + fsync(dir)) and a bare reader that opens the next name when inotify
wakes it, or on a plain timer at the same interval.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from ..bus import Bus
from .baselines import BareFiles
from .common import BenchError, Figure, Settings, Worker, percentile, progress, remove_target


def _measure(
    follower: Worker, publish: Callable[[float], object], count: int, spacing: float, seed: int
) -> list[float]:
    """Publish *count* events at random gaps averaging *spacing* s; the follower's latencies."""
    rng = random.Random(seed)  # same gaps for the store and its baseline
    try:
        follower.ready()
        follower.go()
        for _ in range(count):
            time.sleep(rng.uniform(0, 2 * spacing))
            publish(time.monotonic())
        latencies: list[float] = follower.result(timeout=60 + count * spacing * 4)["latencies"]
    finally:
        follower.close()
    if len(latencies) < count:
        raise BenchError(f"the follower received {len(latencies)} of {count} events in time")
    return latencies


def _store_latencies(settings: Settings, watch: bool, interval: float, count: int) -> list[float]:
    name = f"latency-{'watch' if watch else 'poll'}"
    target, state = settings.phase_target(name), settings.state_dir(name)
    try:
        with Bus(target, node="bench-publisher", state_dir=state, watch=False) as bus:
            bus.publish("warmup.first")  # the stream exists before the follower starts
            args = ["--target", target, "--count", str(count), "--poll-interval", str(interval)]
            follower = Worker("follow", *args, *([] if watch else ["--no-watch"]), state_dir=state)
            spacing = 0.01 if watch else interval / 2
            return _measure(
                follower, lambda t: bus.publish("bench.event", {"t": t}), count, spacing, 6
            )
    finally:
        remove_target(target)


def _bare_latencies(settings: Settings, watch: bool, interval: float, count: int) -> list[float]:
    directory = settings.phase_dir(f"bare-latency-{'watch' if watch else 'poll'}")
    try:
        bare = BareFiles(directory)
        args = ["--dir", str(bare.events_dir), "--count", str(count)]
        args += ["--poll-interval", str(interval), *([] if watch else ["--no-watch"])]
        follower = Worker("bare-follow", *args, state_dir=settings.scratch)
        spacing = 0.01 if watch else interval / 2
        return _measure(follower, lambda t: bare.publish_many(1, sent=t), count, spacing, 6)
    finally:
        remove_target(str(directory))


def run(settings: Settings) -> list[Figure]:
    figures = []
    for watch in (True, False):
        # With the watcher, the poll interval is the default: the watcher must do the work.
        interval = settings.poll_interval if watch else settings.latency_poll_interval
        count = (40 if settings.quick else 300) if watch else (15 if settings.quick else 60)
        mode = "watch" if watch else "poll"
        progress(f"latency ({mode}, poll_interval={interval}s): {count} events, twice")
        ours = _store_latencies(settings, watch, interval, count)
        bare = _bare_latencies(settings, watch, interval, count)
        for label, fraction in (("p50", 0.5), ("p99", 0.99)):
            value = percentile(ours, fraction) * 1000
            limit: float | None = (5.0 if label == "p50" else 20.0) if watch else None
            if not watch and label == "p99":
                limit = interval * 1000 + 50
            figures.append(
                Figure(
                    f"latency.{mode}.{label}",
                    round(value, 2),
                    "ms",
                    baseline=round(percentile(bare, fraction) * 1000, 2),
                    baseline_label=f"bare writer + bare reader woken by "
                    f"{'inotify' if watch else 'a timer'}",
                    target="" if limit is None else f"<= {limit:g} ms",
                    ok=None if limit is None else value <= limit,
                    extra={"events": count, "poll_interval": interval},
                )
            )
    return figures
