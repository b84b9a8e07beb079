"""Following a SQLite store: one integer cursor, rows read after it in batches.

Commits are serialised by SQLite's write lock and ``seq`` is assigned inside them, so rows
become visible in seq order: nothing to wait for, no holes. ``PRAGMA data_version`` changes
when *another* connection commits, which makes the poll of an idle database one pragma; the
store's own commit counter covers commits made through this very connection.

A position dict holds the cursor as ``{POSITION_KEY: seq}``. A per-stream vector (as the
files store uses, or ``follow(start={"web1": 2})``) is accepted too: the reader starts at the
oldest event not covered by it and skips the covered ones it meets after that.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

from ..cursor import Position
from ..errors import CorruptEventError
from ..event import WIRE_VERSION, Event, parse_json
from .base import Gap, GapHandler, Reader
from .sqlite import POSITION_KEY, last_seq

if TYPE_CHECKING:
    from .sqlite import SqliteStore

logger = logging.getLogger(__name__)

_ROWS = (
    "SELECT seq, stream, stream_seq, topic, time, node, origin, data, kid, sig FROM events "
    "WHERE seq > ? ORDER BY seq LIMIT ?"
)
Row = tuple[int, str, int, str, float, str, str, str, str | None, str | None]


class SqliteReader(Reader):
    def __init__(
        self, store: SqliteStore, position: Position, *, on_gap: GapHandler | None = None
    ) -> None:
        super().__init__(on_gap)
        self._store = store
        self._seen: tuple[int, int] | None = None
        self._more = True
        self._covered: dict[str, int] = {}  # a per-stream start vector: skip these seqs
        self._covered_until = 0  # ... up to this global seq, past which none are left
        if POSITION_KEY in position:
            self._seq = position[POSITION_KEY]
        else:
            self._seq = store.db.read(lambda conn: self._start_of(conn, position))

    @property
    def position(self) -> Position:
        return {POSITION_KEY: self._seq}

    def poll(self, limit: int) -> list[Event]:
        db = self._store.db
        version = (int(db.query("PRAGMA data_version")[0][0]), db.commits)
        if version == self._seen and not self._more:
            return []  # nobody committed since our last look
        self._seen = version

        def fetch(conn: sqlite3.Connection) -> tuple[int, list[Row]]:
            return self._store.pruned_through(conn), conn.execute(
                _ROWS, (self._seq, limit)
            ).fetchall()

        pruned, rows = db.read(fetch)
        self._more = len(rows) == limit
        if pruned > self._seq:
            self._report_gap(pruned)
        events = []
        for row in rows:
            self._seq = row[0]
            if self._seq <= self._covered_until and row[2] <= self._covered.get(row[1], 0):
                continue
            event = self._event(row)
            if event is not None:
                events.append(event)
        return events

    def _report_gap(self, pruned: int) -> None:
        gap = Gap(POSITION_KEY, self._seq + 1, pruned + 1)
        logger.warning("gap in %s of %s", gap, self._store.path)
        self.counters["gaps"] += 1
        self._seq = pruned
        if self.on_gap is not None:
            self.on_gap(gap)

    def _event(self, row: Row) -> Event | None:
        seq, stream, stream_seq, topic, time, node, origin, data, kid, sig = row
        # Rows are written by fsevents, but the file is open to anyone on the host: a
        # hostile or broken row is skipped like a bad event file, never trusted.
        try:
            if not isinstance(data, str) or len(data) > self._store.max_event_size:
                raise CorruptEventError("payload missing or over the size limit")
            doc = {
                "v": WIRE_VERSION,
                "id": f"{stream}:{stream_seq}",
                "stream": stream,
                "seq": stream_seq,
                "topic": topic,
                "time": time,
                "node": node,
                "origin": origin,
                "data": parse_json(data),
                **({"kid": kid, "sig": sig} if sig is not None else {}),
            }
            return Event.from_dict(doc)
        except (CorruptEventError, ValueError, RecursionError) as exc:
            logger.warning("skipping row seq=%d of %s: %s", seq, self._store.path, exc)
            self.counters["skipped"] += 1
            return None

    def _start_of(self, conn: sqlite3.Connection, vector: Position) -> int:
        """The global seq just before the oldest event that *vector* does not cover."""
        firsts = []
        for (stream,) in conn.execute("SELECT stream FROM streams").fetchall():
            seen = vector.get(stream, 0)
            first, last_covered = conn.execute(
                "SELECT min(CASE WHEN stream_seq > ?1 THEN seq END), "
                "max(CASE WHEN stream_seq <= ?1 THEN seq END) FROM events WHERE stream = ?2",
                (seen, stream),
            ).fetchone()
            if first is not None:
                firsts.append(int(first))
            if last_covered is not None:
                self._covered[stream] = seen
                self._covered_until = max(self._covered_until, int(last_covered))
        if firsts:
            return min(firsts) - 1
        return last_seq(conn)
