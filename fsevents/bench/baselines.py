"""Bare loops that do what a store must do, and nothing else: what each figure is held to.

Fairness (issue #6): the files-store publish does, per event, write a temp file, fsync it,
``os.link`` it to its final name, unlink the temp, and fsync the segment directory. The bare
loop makes the same system calls in the same order on the same volume; only the library's
own work (validation, JSON encoding, sequence allocation under a local lock, counters) is
missing. The variant without the directory fsync is measured too, because on ext4 that fsync
is a separate journal flush that costs as much as the file's own.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

_PAYLOAD = {"key": "products", "i": 0}
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)


def event_bytes(i: int, sent: float | None = None) -> bytes:
    """Bytes of about the size of a real event file (~250 bytes)."""
    doc: dict[str, Any] = {
        "v": 1,
        "id": f"bare:{i}",
        "stream": "bare",
        "seq": i,
        "topic": "bench.event",
        "time": time.time(),
        "node": "bare",
        "origin": "bare:1:00000000",
        "data": {**_PAYLOAD, "i": i, "t": sent},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _fsync_dir(path: str) -> None:
    fd = os.open(path, _DIR_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BareFiles:
    """Write + fsync + link + unlink (+ fsync of the directory) per event, in a plain loop."""

    def __init__(self, root: Path, *, fsync_dir: bool = True, name: str = "bare") -> None:
        self.events_dir = root / "events" / name
        self.tmp_dir = root / "tmp"
        self.events_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.fsync_dir = fsync_dir
        self.name = name
        self.next = 1

    def publish_many(self, count: int, sent: float | None = None) -> None:
        """*count* events, one fsync of the directory for all (as ``publish_many``)."""
        temps = []
        for _ in range(count):
            tmp = f"{self.tmp_dir}/{self.name}.{self.next}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o664)
            try:
                os.write(fd, event_bytes(self.next, sent))
                os.fsync(fd)
            finally:
                os.close(fd)
            temps.append((tmp, f"{self.events_dir}/{self.next:012d}.json"))
            self.next += 1
        for tmp, final in temps:
            os.link(tmp, final)
            os.unlink(tmp)
        if self.fsync_dir:
            _fsync_dir(str(self.events_dir))


def sqlite_publish_baseline(
    path: Path, *, count: int, batch: int = 1, synchronous: str = "NORMAL"
) -> float:
    """Events/s of a bare INSERT + commit loop in WAL mode with the given ``synchronous``.

    The SQLite store's figure is held to this (issue #6); it is reported only for a target
    that opens a SQLite store.
    """
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute(
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " stream TEXT, topic TEXT, time REAL, body TEXT)"
        )
        started = time.perf_counter()
        for start in range(0, count, batch):
            db.execute("BEGIN IMMEDIATE")
            for i in range(start, min(start + batch, count)):
                db.execute(
                    "INSERT INTO events (stream, topic, time, body) VALUES (?, ?, ?, ?)",
                    ("bare", "bench.event", time.time(), event_bytes(i).decode()),
                )
            db.execute("COMMIT")
        return count / (time.perf_counter() - started)
    finally:
        db.close()


def read_files_in_order(streams_dir: Path, segment_size: int) -> int:
    """The bare catch-up: open every event file by name in seq order, read it, parse it."""
    count = 0
    for stream in sorted(os.listdir(streams_dir)):
        seq = 1
        while True:
            path = f"{streams_dir}/{stream}/{seq // segment_size:08d}/{seq:012d}.json"
            try:
                with open(path, "rb") as fh:
                    json.loads(fh.read())
            except FileNotFoundError:
                break
            count += 1
            seq += 1
    return count


def read_sqlite_in_order(path: Path) -> int:
    """The bare catch-up of a SQLite store: fetch every row of ``events`` in order.

    The rows are fetched, not decoded: the store's schema decides which column holds the
    JSON, so this is a floor rather than an exact match of the store's work.
    """
    db = sqlite3.connect(path)
    try:
        return sum(1 for _ in db.execute("SELECT * FROM events ORDER BY rowid"))
    finally:
        db.close()
