"""What every bench phase shares: figures, per-phase targets, worker processes, progress."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FseventsError
from ..event import Draft, encode_data
from ..stores import Store

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


class BenchError(FseventsError, RuntimeError):
    """A benchmark phase could not run (a worker failed or timed out)."""


@dataclass(slots=True)
class Figure:
    """One measured number and the bare baseline measured next to it in the same run."""

    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    ok: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_label": self.baseline_label,
            "target": self.target,
            "ok": self.ok,
            "note": self.note,
            **self.extra,
        }


@dataclass(slots=True)
class Settings:
    """What the phases need to know: where to run, how long, and this run's scratch space."""

    target: str
    scratch: Path  # local temp dir: state dirs, worker outputs
    quick: bool
    poll_interval: float = 1.0
    latency_poll_interval: float = 0.2
    catchup_events: int = 100_000
    streams: int = 20
    idle_seconds: float = 30.0

    def phase_target(self, name: str) -> str:
        """A fresh target beside (SQLite file) or inside (directory) the user's target."""
        base = Path(self.target)
        if base.suffix in SQLITE_SUFFIXES:
            return str(base.with_name(f"{base.stem}.bench-{name}{base.suffix}"))
        return str(base / f"fsevents-bench-{name}")

    def phase_dir(self, name: str) -> Path:
        """A fresh directory on the target's volume, for the bare loops (whatever the store)."""
        base = Path(self.target.removeprefix("sqlite:"))
        if base.suffix in SQLITE_SUFFIXES:
            return base.with_name(f"{base.stem}.bench-{name}")
        return base / f"fsevents-bench-{name}"

    def state_dir(self, name: str) -> Path:
        return self.scratch / "state" / name


def remove_target(target: str) -> None:
    path = Path(target.removeprefix("sqlite:"))
    if path.suffix in SQLITE_SUFFIXES and not path.is_dir():
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def progress(message: str) -> None:
    print(f"bench: {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 100 samples is the 99th value)."""
    if not values:
        raise BenchError("no samples to take a percentile of")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def fill(store: Store, streams: int, total: int, *, batch: int = 1000) -> None:
    """Append *total* events spread over *streams* streams, as fast as the store allows."""
    per_stream = total // streams
    for s in range(streams):
        node = f"node{s:02d}"
        origin = f"{node}:0:bench"
        for start in range(0, per_stream, batch):
            count = min(batch, per_stream - start)
            drafts = [
                Draft("bench.fill", encode_data({"i": start + i}), time.time(), node, origin)
                for i in range(count)
            ]
            store.append(node, drafts)


def worker_env(state_dir: Path) -> dict[str, str]:
    return {**os.environ, "FSEVENTS_STATE_DIR": str(state_dir)}


class Worker:
    """``python -m fsevents.bench.worker MODE ...``: prints one JSON line when ready, waits
    for "go" on stdin (so that several start together), then prints one JSON result line."""

    def __init__(self, mode: str, *args: str, state_dir: Path) -> None:
        self.mode = mode
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fsevents.bench.worker", mode, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=worker_env(state_dir),
        )

    def _line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise BenchError(f"bench worker {self.mode!r} exited with status {code} (see stderr)")
        result: dict[str, Any] = json.loads(line)
        return result

    def ready(self) -> dict[str, Any]:
        return self._line()

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def result(self, timeout: float) -> dict[str, Any]:
        """The worker's result line; a worker silent for *timeout* seconds is killed."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            if _readable(self.proc, 0.1):
                break
        if not _readable(self.proc, 0) and self.proc.poll() is None:
            self.kill()
            raise BenchError(f"bench worker {self.mode!r} gave no result within {timeout:.0f}s")
        result = self._line()
        self.proc.wait(timeout=30)
        return result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _readable(proc: subprocess.Popen[str], timeout: float) -> bool:
    import select

    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return bool(ready)
