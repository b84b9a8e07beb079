"""Publish throughput: one and four processes, single events and ``publish_many``.

Four processes publish as one node (the worker processes of one machine share its stream,
allocating sequence numbers under the node's local lock); their bare baseline is four plain
loops writing distinct names, which need no lock at all. Each figure is next to the bare loop
doing the same system calls (baselines.py), with and without the directory fsync.
"""

from __future__ import annotations

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
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    return sum(r["count"] for r in results) / span


def _store_rate(settings: Settings, procs: int, count: int, batch: int) -> float:
    target = settings.phase_target(f"publish-{procs}-{batch}")
    state = settings.state_dir(f"publish-{procs}-{batch}")
    try:
        open_store(target, state_dir=state).close()  # create the root once, not in the race
        args = ["--target", target, "--count", str(count), "--batch", str(batch)]
        return _rate([Worker("publish", *args, state_dir=state) for _ in range(procs)], 300)
    finally:
        remove_target(target)


def _bare_rate(settings: Settings, procs: int, count: int, batch: int, dir_fsync: bool) -> float:
    directory = Path(settings.phase_target(f"bare-{procs}-{batch}-{int(dir_fsync)}"))
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


def run(settings: Settings) -> list[Figure]:
    kind = store_kind(settings)
    count = 300 if settings.quick else 2000
    figures = []
    for procs in (1, 4):
        for batch in (1, BATCH):
            per_proc = max(count // procs // batch, 1) * batch
            label = "single" if batch == 1 else f"publish_many({batch})"
            progress(f"publish: {procs} process(es), {label}, {per_proc * procs} events")
            rate = _store_rate(settings, procs, per_proc, batch)
            figure = Figure(
                f"publish.{'single' if batch == 1 else 'many'}.{procs}proc",
                round(rate),
                "events/s",
            )
            if kind == "files":
                bare = _bare_rate(settings, procs, per_proc, batch, dir_fsync=True)
                no_dir = _bare_rate(settings, procs, per_proc, batch, dir_fsync=False)
                figure.baseline = round(bare)
                figure.baseline_label = "bare write+fsync+link+unlink+fsync(dir) loop"
                figure.extra["baseline_without_dir_fsync"] = round(no_dir)
                figure.target = ">= 70% of baseline"
                figure.ok = rate >= 0.7 * bare
            elif kind == "sqlite":
                path = Path(settings.phase_target(f"bare-sqlite-{procs}-{batch}"))
                try:
                    bare = sqlite_publish_baseline(path, count=per_proc, batch=batch)
                finally:
                    remove_target(str(path))
                figure.baseline = round(bare)
                figure.baseline_label = "bare INSERT + commit, WAL, synchronous=NORMAL, 1 process"
                figure.target = ">= 50% of baseline"
                figure.ok = rate >= 0.5 * bare
            else:
                figure.note = f"no bare baseline for the {kind} store"
            figure.extra["events"] = per_proc * procs
            figures.append(figure)
    return figures


def store_kind(settings: Settings) -> str:
    """"files", "sqlite", or the store class's name: which bare baseline applies."""
    store = open_store(settings.phase_target("probe"), state_dir=settings.state_dir("probe"))
    try:
        if isinstance(store, FilesStore):
            return "files"
        name = type(store).__name__.lower()
        return "sqlite" if "sqlite" in name else name
    finally:
        store.close()
        remove_target(settings.phase_target("probe"))
