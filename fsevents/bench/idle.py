"""Idle cost of a follower, and what one poll costs with few or many retained events.

The idle follower (default options, so the default poll interval) runs in its own process
on a store with ``streams`` streams and ``catchup_events`` retained events; it measures its
own CPU time while nothing is published. Its baseline is a bare loop doing one failed open
per stream per interval, run at the same time. Poll cost is timed in this process: a reader
at the head of a store with 100 retained events, then of the big store.
"""

from __future__ import annotations

import time

from ..stores import open_store
from .common import Figure, Settings, Worker, fill, progress, remove_target


def run(settings: Settings, big_target: str) -> list[Figure]:
    return [_idle_cpu(settings, big_target), *_poll_cost(settings, big_target)]


def _idle_cpu(settings: Settings, target: str) -> Figure:
    seconds = settings.idle_seconds
    progress(f"idle: a follower and its bare baseline wait {seconds:g}s side by side")
    state = settings.state_dir("idle")
    interval = ["--poll-interval", str(settings.poll_interval), "--seconds", str(seconds)]
    store = open_store(target, state_dir=state)
    streams_dir = str(getattr(store, "streams_dir", settings.scratch))
    store.close()
    workers = [
        Worker("idle", "--target", target, *interval, state_dir=state),
        Worker("bare-idle", "--dir", streams_dir, *interval, state_dir=state),
    ]
    try:
        for worker in workers:
            worker.ready()
        for worker in workers:
            worker.go()
        ours, bare = (worker.result(timeout=seconds + 60) for worker in workers)
    finally:
        for worker in workers:
            worker.close()
    percent = 100 * ours["cpu_seconds"] / ours["wall_seconds"]
    return Figure(
        "idle.cpu_percent",
        round(percent, 4),
        "% of one core",
        baseline=round(100 * bare["cpu_seconds"] / bare["wall_seconds"], 4),
        baseline_label="bare loop: one failed open per stream per poll interval",
        target="<= 1% of one core",
        ok=percent <= 1.0,
        extra={
            "cpu_seconds_per_minute": round(60 * ours["cpu_seconds"] / ours["wall_seconds"], 3),
            "seconds": seconds,
            "poll_interval": settings.poll_interval,
            "streams": settings.streams,
            "retained_events": settings.catchup_events,
        },
    )


def _timed_polls(settings: Settings, target: str, polls: int, scans: int) -> tuple[float, float]:
    """Mean seconds of a steady-state poll and of a poll with the periodic scan."""
    store = open_store(target, state_dir=settings.state_dir("poll-cost"))
    try:
        reader = store.reader(store.head(), hole_timeout=30.0, scan_interval=3600.0)
        reader.poll(1000)  # the first poll scans: timed separately below
        started = time.perf_counter()
        for _ in range(polls):
            reader.poll(1000)
        poll = (time.perf_counter() - started) / polls
        started = time.perf_counter()
        for _ in range(scans):
            reader.request_scan()
            reader.poll(1000)
        return poll, (time.perf_counter() - started) / scans
    finally:
        store.close()


def _poll_cost(settings: Settings, big_target: str) -> list[Figure]:
    progress("poll cost: 100 retained events vs the big store")
    small_target = settings.phase_target("poll-small")
    try:
        with open_store(small_target, state_dir=settings.state_dir("poll-cost")) as small:
            fill(small, settings.streams, 100, batch=100)
        polls, scans = (200, 20) if settings.quick else (2000, 100)
        small_poll, small_scan = _timed_polls(settings, small_target, polls, scans)
        big_poll, big_scan = _timed_polls(settings, big_target, polls, scans)
    finally:
        remove_target(small_target)
    figures = []
    for what, ours, baseline in (("poll", big_poll, small_poll), ("scan", big_scan, small_scan)):
        figures.append(
            Figure(
                f"{what}.cost_us",
                round(ours * 1e6, 1),
                f"µs per {what}",
                baseline=round(baseline * 1e6, 1),
                baseline_label="the same with 100 retained events",
                target="<= 2x baseline" if what == "poll" else "",
                ok=ours <= 2 * baseline if what == "poll" else None,
                extra={"retained_events": settings.catchup_events, "streams": settings.streams},
            )
        )
    return figures
