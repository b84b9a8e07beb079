"""Publish throughput: one and four processes, single events and ``publish_many``.

Four processes publish as one node (the worker processes of one machine share its stream,
allocating sequence numbers under the node's local lock); their bare baseline is four plain
loops writing distinct names, which need no lock at all. Each figure is next to the bare loop
doing the same system calls (baselines.py), with and without the directory fsync.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from ..stores import FilesStore, open_store
from .baselines import sqlite_publish_baseline
from .common import Figure, Settings, Worker, progress, remove_target

BATCH = 100  # events per publish_many call


def _rate(workers: list[Worker], timeout: float) -> float:
    """Events/s of workers started together: all their events over the span they took."""
    try:
        for worker in workers:
            worker.ready()
        for worker in workers:
            worker.go()
        results = [worker.result(timeout) for worker in workers]
    finally:
        for worker in workers:
            worker.close()
    span = float(max(r["end"] for r in results) - min(r["start"] for r in results))
    return sum(int(r["count"]) for r in results) / span


def _store_rate(settings: Settings, procs: int, count: int, batch: int, nodes: int) -> float:
    name = f"publish-{procs}-{batch}-{nodes}"
    target, state = settings.phase_target(name), settings.state_dir(name)
    try:
        open_store(target, state_dir=state).close()  # create the root once, not in the race
        args = ["--target", target, "--count", str(count), "--batch", str(batch)]
        workers = [
            Worker("publish", *args, "--node", f"bench{i % nodes}", state_dir=state)
            for i in range(procs)
        ]
        return _rate(workers, 300)
    finally:
        remove_target(target)


def _bare_rate(settings: Settings, procs: int, count: int, batch: int, dir_fsync: bool) -> float:
    directory = settings.phase_dir(f"bare-{procs}-{batch}-{int(dir_fsync)}")
    try:
        args = ["--dir", str(directory), "--count", str(count), "--batch", str(batch)]
        if not dir_fsync:
            args.append("--no-dir-fsync")
        workers = [
            Worker("bare-publish", *args, "--name", f"w{i}", state_dir=settings.scratch)
            for i in range(procs)
        ]
        return _rate(workers, 300)
    finally:
        remove_target(str(directory))


def _sqlite_rate(settings: Settings, count: int, batch: int) -> float:
    path = Path(settings.phase_target(f"bare-sqlite-{batch}"))
    try:
        return sqlite_publish_baseline(path, count=count, batch=batch)
    finally:
        remove_target(str(path))


#: (processes, events per call, nodes they publish as)
CASES = [(1, 1, 1), (1, BATCH, 1), (4, 1, 1), (4, BATCH, 1), (4, 1, 4)]


def run(settings: Settings, kind: str) -> list[Figure]:
    """Each case runs several rounds, alternating with its baselines; medians are reported,
    because other work on a shared machine moves single runs by tens of percent.

    *kind* (store_kind) says which bare baseline applies.
    """
    count, rounds = (200, 1) if settings.quick else (1000, 5)
    figures = []
    for procs, batch, nodes in CASES:
        per_proc = max(count // procs // batch, 1) * batch
        call = "single" if batch == 1 else "many"
        who = f"{procs}proc" if nodes == 1 else f"{nodes}nodes"
        progress(
            f"publish: {procs} process(es) as {nodes} node(s), {call}, "
            f"{per_proc * procs} events x {rounds} round(s), and baselines"
        )
        ours, bare, no_dir = [], [], []
        for _ in range(rounds):
            ours.append(_store_rate(settings, procs, per_proc, batch, nodes))
            if kind == "files":
                bare.append(_bare_rate(settings, procs, per_proc, batch, dir_fsync=True))
                if not settings.quick:
                    no_dir.append(_bare_rate(settings, procs, per_proc, batch, dir_fsync=False))
            elif kind == "sqlite":
                bare.append(_sqlite_rate(settings, per_proc, batch))
        rate = statistics.median(ours)
        figure = Figure(f"publish.{call}.{who}", round(rate), "events/s")
        figure.extra.update(
            events=per_proc * procs, rounds=rounds, all_rounds=[round(r) for r in ours]
        )
        if kind == "files":
            figure.baseline = round(statistics.median(bare))
            figure.baseline_label = "bare write+fsync+link+unlink+fsync(dir) loop, same processes"
            if no_dir:
                figure.extra["baseline_without_dir_fsync"] = round(statistics.median(no_dir))
            figure.target = ">= 70% of baseline"
        elif kind == "sqlite":
            figure.baseline = round(statistics.median(bare))
            figure.baseline_label = "bare INSERT + commit, WAL, synchronous=NORMAL, 1 process"
            figure.target = ">= 50% of baseline"
        else:
            figure.note = f"no bare baseline for the {kind} store"
        if bare:
            # Judge by the rounds' own ratios: each round ran next to its baseline, so load
            # from other work on the machine moves both (medians of each side drift apart).
            ratio = statistics.median(o / b for o, b in zip(ours, bare, strict=True))
            figure.extra["ratio"] = round(ratio, 2)
            figure.extra["all_baseline_rounds"] = [round(b) for b in bare]
            figure.ok = ratio >= (0.7 if kind == "files" else 0.5)
        figures.append(figure)
    return figures


def store_kind(settings: Settings) -> str:
    """ "files", "sqlite", or the store class's name: which bare baseline applies."""
    store = open_store(settings.phase_target("probe"), state_dir=settings.state_dir("probe"))
    try:
        if isinstance(store, FilesStore):
            return "files"
        name = type(store).__name__.lower()
        return "sqlite" if "sqlite" in name else name
    finally:
        store.close()
        remove_target(settings.phase_target("probe"))
