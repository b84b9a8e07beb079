"""The SQLite store: events as rows of one database file, for processes on one host.

Schema::

    events(seq INTEGER PRIMARY KEY AUTOINCREMENT, stream, stream_seq, topic, time, node,
           origin, data)      seq: global commit order; (stream, stream_seq): the event id
    streams(stream PRIMARY KEY, last_seq)   per-writer counters, survive pruning
    nodes(node PRIMARY KEY, doc)            heartbeats
    meta(key PRIMARY KEY, value)            format, id, created, pruned_through

Events keep the same ids as in the files store (``web1:7``: per-writer seq, contiguous),
allocated inside the write transaction. A reader's cursor is one integer, the global ``seq``:
commits are serialised, so rows become visible in seq order and there are no holes to wait
for. In a position dict it is the single entry ``{POSITION_KEY: seq}`` (sqlite_reader.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from watchdog import events as watchdog_events
from watchdog.events import FileCreatedEvent, FileModifiedEvent, FileMovedEvent

from ..cursor import LocalState, Position, resolve_state_dir
from ..errors import PublishError, RootError
from ..event import DEFAULT_MAX_EVENT_SIZE, Draft, Event
from ..retention import PruneReport, Retention
from .base import NOT_A_ROOT, GapHandler, Reader, Store, StreamInfo
from .sqlite_db import (
    JOURNAL_MODES,
    SYNCHRONOUS,
    Connections,
    check_volume,
    choice,
    parse_target,
    seconds,
)

logger = logging.getLogger(__name__)

FORMAT = "1"
#: The one key of a SQLite position dict (a valid stream name, so cursor files accept it).
POSITION_KEY = "sqlite.seq"

# watchdog >= 5 reports IN_ATTRIB as FileAttribEvent; older versions as FileModifiedEvent.
ATTRIB_EVENTS = tuple(
    e for e in [getattr(watchdog_events, "FileAttribEvent", None)] if isinstance(e, type)
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL, stream_seq INTEGER NOT NULL, topic TEXT NOT NULL,
    time REAL NOT NULL, node TEXT NOT NULL, origin TEXT NOT NULL, data TEXT NOT NULL,
    kid TEXT, sig TEXT,
    UNIQUE(stream, stream_seq));
CREATE TABLE IF NOT EXISTS streams(stream TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nodes(node TEXT PRIMARY KEY, doc TEXT NOT NULL);
"""


class SqliteStore(Store):
    """Events in one SQLite database; every process that uses it must be on one host.

    ``synchronous`` (default: ``normal`` when *fsync*, else ``off``): in WAL mode ``normal``
    makes a commit survive a crash of the process (SIGKILL) but not necessarily of the
    machine (power loss may drop the last commits, never corrupt); ``full`` fsyncs the WAL
    on every commit, the durability the files store gives with fsync.
    ``journal_mode`` is ``wal`` unless asked otherwise; on a network file system WAL is
    refused, and a rollback journal (``delete``) runs only when asked for, with a warning.
    """

    # A commit modifies existing files, which the files store's "new names" filter ignores.
    # Those writes happen *before* the commit is visible (WAL frames are written, fsynced
    # with synchronous=full, and only then published in the -shm index, which inotify never
    # sees): a reader woken by them may find nothing yet and go back to sleep until the next
    # poll (measured: one in 20 publishes took the full poll interval). So append() rings a
    # doorbell once the commit is visible: it touches the database file's times (IN_ATTRIB).
    watch_events = (FileModifiedEvent, FileCreatedEvent, FileMovedEvent, *ATTRIB_EVENTS)

    def __init__(
        self,
        target: str | os.PathLike[str],
        *,
        state_dir: str | os.PathLike[str] | None = None,
        fsync: bool = True,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        journal_mode: str | None = None,
        synchronous: str | None = None,
        busy_timeout: float | None = None,
        create: bool = True,
    ) -> None:
        self.path, options = parse_target(target)
        self.journal_mode = choice(
            "journal_mode", journal_mode or options.get("journal_mode", "wal"), JOURNAL_MODES
        )
        default_sync = "normal" if fsync else "off"
        self.synchronous = choice(
            "synchronous", synchronous or options.get("synchronous", default_sync), SYNCHRONOUS
        )
        self.busy_timeout = seconds(
            "busy_timeout",
            busy_timeout if busy_timeout is not None else options.get("busy_timeout", 30.0),
        )
        self.max_event_size = max_event_size
        check_volume(self.path, self.journal_mode)
        if not create and not self.path.is_file():
            raise RootError(f"{self.path} {NOT_A_ROOT}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RootError(f"cannot create {self.path.parent}: {exc.strerror}") from exc
        if self.path.is_dir():
            raise RootError(f"{self.path} is a directory; a SQLite target names a file")
        self.db = Connections(self.path, busy_timeout=self.busy_timeout, setup=self._setup)
        try:
            self.identity = self._open_database()
        except PublishError as exc:
            self.db.close()
            raise RootError(
                f"cannot open {self.path} as an fsevents SQLite database: {exc}; "
                "check the path and its permissions, or choose another --root"
            ) from exc
        self.local = LocalState(resolve_state_dir(state_dir), self.identity)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # -- opening ------------------------------------------------------------------------

    def _setup(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute(f"PRAGMA journal_mode={self.journal_mode}").fetchone()[0]
        if str(mode).lower() != self.journal_mode:
            raise RootError(
                f"{self.path}: cannot switch to journal_mode={self.journal_mode} (still "
                f"{mode}); another process has the database open in that mode"
            )
        conn.execute(f"PRAGMA synchronous={self.synchronous}")

    def _open_database(self) -> str:
        def create(conn: sqlite3.Connection) -> str:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if tables and "meta" not in tables:
                raise RootError(
                    f"{self.path} is a SQLite database of another application (tables "
                    f"{sorted(tables)[:5]}); point --root at a new file"
                )
            # One statement at a time: executescript() would COMMIT our IMMEDIATE transaction.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.executemany(
                "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)",
                [
                    ("format", FORMAT),
                    ("id", secrets.token_hex(8)),
                    ("created", repr(time.time())),
                    ("pruned_through", "0"),
                ],
            )
            meta = dict(conn.execute("SELECT key, value FROM meta"))
            if meta.get("format") != FORMAT:
                raise RootError(
                    f"{self.path} declares format {meta.get('format')!r}, this fsevents reads "
                    f"format {FORMAT}; upgrade fsevents on this host or use another --root"
                )
            return str(meta["id"])

        return self.db.write(create)

    # -- reading ------------------------------------------------------------------------

    def head(self) -> Position:
        return {POSITION_KEY: self.db.read(last_seq)}

    def beginning(self) -> Position:
        return {POSITION_KEY: self.db.read(self.pruned_through)}

    @staticmethod
    def pruned_through(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = 'pruned_through'").fetchone()
        return int(row[0]) if row else 0

    def reader(
        self,
        position: Position,
        *,
        hole_timeout: float,
        scan_interval: float,
        on_gap: GapHandler | None = None,
    ) -> Reader:
        from .sqlite_reader import SqliteReader

        return SqliteReader(self, position, on_gap=on_gap)

    def watch_paths(self) -> list[Path]:
        return [self.path.parent]

    def watch_names(self) -> frozenset[str]:
        return frozenset({self.path.name, f"{self.path.name}-wal"})

    # -- writing ------------------------------------------------------------------------

    def append(self, stream: str, drafts: Sequence[Draft]) -> list[Event]:
        if not drafts:
            return []

        def insert(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT last_seq FROM streams WHERE stream = ?", (stream,))
            first = int((row.fetchone() or (0,))[0]) + 1
            self.check_sizes(stream, first, drafts)  # the size limit, as in every store
            rows = []
            for i, d in enumerate(drafts):
                signature = d.signature(stream, first + i)  # signed events (signing.py)
                rows.append(
                    (
                        stream,
                        first + i,
                        d.topic,
                        d.time,
                        d.node,
                        d.origin,
                        d.data_json,
                        signature.get("kid"),
                        signature.get("sig"),
                    )
                )
            conn.executemany(
                "INSERT INTO events(stream, stream_seq, topic, time, node, origin, data, kid, sig)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.execute(
                "INSERT OR REPLACE INTO streams(stream, last_seq) VALUES (?, ?)",
                (stream, first + len(drafts) - 1),
            )
            return first

        first = self.db.write(insert)
        self._ring_doorbell()
        return self.events_of(stream, first, drafts)

    def _ring_doorbell(self) -> None:
        try:
            os.utime(self.path)
        except OSError as exc:  # e.g. not the owner and no write permission: polls still work
            logger.debug("cannot touch %s to wake local readers: %s", self.path, exc)

    def prune(self, node: str, retention: Retention, *, now: float) -> PruneReport:
        """Remove the oldest events of the whole database (one log for the farm, one host).

        Events older than ``retention.age`` go, and all but the newest ``retention.count``.
        Removes a prefix in seq order (everything up to a bound), so ``pruned_through`` tells a
        reader exactly which events it can no longer get. Every node may run it: it is
        idempotent, and the ``streams`` table keeps each writer's next seq, so unlike the files
        store no newest event needs to stay.
        """

        def delete(conn: sqlite3.Connection) -> dict[str, int]:
            bounds = []
            if retention.age is not None:
                row = conn.execute(
                    "SELECT seq FROM events WHERE time >= ? ORDER BY seq LIMIT 1",
                    (now - retention.age,),
                ).fetchone()
                bounds.append(int(row[0]) if row else last_seq(conn) + 1)
            if retention.count is not None:
                row = conn.execute(
                    "SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?",
                    (retention.count - 1,),
                ).fetchone()
                if row:
                    bounds.append(int(row[0]))
            if not bounds:
                return {}
            keep_from = max(bounds)
            removed = dict(
                conn.execute(
                    "SELECT stream, count(*) FROM events WHERE seq < ? GROUP BY stream",
                    (keep_from,),
                ).fetchall()
            )
            conn.execute("DELETE FROM events WHERE seq < ?", (keep_from,))
            if keep_from - 1 > self.pruned_through(conn):
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'pruned_through'", (str(keep_from - 1),)
                )
            return {str(k): int(v) for k, v in removed.items()}

        return PruneReport(removed=self.db.write(delete))

    def describe_streams(self) -> list[StreamInfo]:
        rows = self.db.query(
            "SELECT s.stream, count(e.seq), min(e.stream_seq), s.last_seq, "
            "coalesce(sum(length(e.data)), 0) FROM streams s "
            "LEFT JOIN events e ON e.stream = s.stream GROUP BY s.stream ORDER BY s.stream"
        )
        return [StreamInfo(str(r[0]), int(r[1]), r[2], int(r[3]), int(r[4])) for r in rows]

    # -- heartbeats ---------------------------------------------------------------------

    def write_heartbeat(self, node: str, doc: dict[str, Any]) -> None:
        self.db.write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO nodes(node, doc) VALUES (?, ?)", (node, json.dumps(doc))
            )
        )

    def read_heartbeat(self, node: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT doc FROM nodes WHERE node = ?", (node,))
        try:
            doc = json.loads(rows[0][0]) if rows else None
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def read_heartbeats(self) -> dict[str, dict[str, Any]]:
        beats = {}
        for node, text in self.db.query("SELECT node, doc FROM nodes ORDER BY node"):
            with contextlib.suppress(ValueError):
                doc = json.loads(text)
                if isinstance(doc, dict):
                    beats[str(node)] = doc
        return beats

    def close(self) -> None:
        self.db.close()

    def __del__(self) -> None:
        # A Bus that is never closed must not leave its connections to the garbage collector.
        db = getattr(self, "db", None)
        if db is not None:
            db.close()


def last_seq(conn: sqlite3.Connection) -> int:
    """The highest seq ever given (AUTOINCREMENT's record survives pruning)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return int(row[0]) if row else 0
