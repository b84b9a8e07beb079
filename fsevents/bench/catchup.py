"""Catch-up: a durable consumer replays every retained event; its speed and peak memory.

The consumer is a separate process started from "beginning" on a store holding
``catchup_events`` events over ``streams`` streams. Its baseline is a bare loop that opens
each event file by name in order and parses it (files store) or fetches every row (SQLite).
Peak RSS (VmHWM) is compared with the same worker's RSS before it started following.
"""

from __future__ import annotations

from pathlib import Path

from ..stores import FilesStore, open_store
from .baselines import read_sqlite_in_order
from .common import Figure, Settings, Worker, progress


def run(settings: Settings, target: str, kind: str) -> list[Figure]:
    count = settings.catchup_events
    progress(f"catch-up: a durable consumer replays {count} events")
    state = settings.state_dir("catchup")
    worker = Worker("catchup", "--target", target, "--count", str(count), state_dir=state)
    try:
        before = worker.ready()
        worker.go()
        ours = worker.result(timeout=600)
    finally:
        worker.close()
    if ours["count"] < count:
        progress(f"catch-up: only {ours['count']} of {count} events arrived in time")
    rate = ours["count"] / ours["seconds"]
    figure = Figure("catchup.events_per_s", round(rate), "events/s", extra={"events": count})
    if kind == "files":
        bare = _bare_files_rate(settings, target)
        figure.baseline, figure.baseline_label = round(bare), "bare open+read+json.loads by name"
        figure.target, figure.ok = ">= 20000 events/s", rate >= 20_000
    elif kind == "sqlite":
        bare = _bare_sqlite_rate(target)
        figure.baseline, figure.baseline_label = round(bare), "bare SELECT of every row"
        figure.target, figure.ok = ">= 50000 events/s", rate >= 50_000
    else:
        figure.note = f"no bare baseline for the {kind} store"
    peak_mb = ours["peak_rss_kb"] / 1024
    rss = Figure(
        "catchup.peak_rss_mb",
        round(peak_mb, 1),
        "MB",
        baseline=round(before["rss_kb"] / 1024, 1),
        baseline_label="the same follower process before it started",
        target="<= 60 MB",
        ok=peak_mb <= 60,
        extra={"events": count},
    )
    return [figure, rss]


def _bare_files_rate(settings: Settings, target: str) -> float:
    store = open_store(target, state_dir=settings.state_dir("catchup"))
    assert isinstance(store, FilesStore)
    args = ["--dir", str(store.streams_dir), "--segment-size", str(store.segment_size)]
    worker = Worker("bare-catchup", *args, state_dir=settings.state_dir("catchup"))
    try:
        worker.ready()
        worker.go()
        result = worker.result(timeout=600)
    finally:
        worker.close()
    return float(result["count"]) / float(result["seconds"])


def _bare_sqlite_rate(target: str) -> float:
    import time

    started = time.perf_counter()
    count = read_sqlite_in_order(Path(target.removeprefix("sqlite:")))
    return count / (time.perf_counter() - started)
