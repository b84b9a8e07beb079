"""Following a files store: probe the next expected file of each stream by name.

Why by name (DESIGN.md, "Receiving"): on network volumes a directory listing is cached for
20-60 s, while an open by name asks the server. So the steady-state poll opens
``<stream>/<segment>/<pos+1>.json`` for each known stream and reads on while files are
there: O(streams) per poll, whatever the number of retained events.

Listings are used only in the periodic *scan*: to discover new streams, and to look past a
missing seq when later ones exist (a *hole*: late visibility, wait for it up to hole_timeout,
then deliver past it and keep probing for it) or when the stream's oldest retained event is
past the position (a *gap*: retention removed what this reader never saw).
"""

from __future__ import annotations

import errno
import heapq
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..cursor import Position
from ..errors import CorruptEventError
from ..event import Event
from .base import Gap, GapHandler, Reader

if TYPE_CHECKING:
    from .files import FilesStore

logger = logging.getLogger(__name__)

_MISSING = object()
_SKIPPED = object()
# Errors that mean "not there (yet)": stale NFS handles during pruning, a segment dir that
# a pruner removed between our checks.
_ABSENT_ERRNOS = {errno.ENOENT, errno.ESTALE, errno.ENOTDIR}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(slots=True)
class _Hole:
    start: int  # first missing seq
    resume: int  # first seq visible after it
    since: float


class FilesReader(Reader):
    def __init__(
        self,
        store: FilesStore,
        position: Position,
        *,
        hole_timeout: float,
        scan_interval: float,
        on_gap: GapHandler | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(on_gap)
        self._store = store
        self._pos = dict(position)
        self._hole_timeout = hole_timeout
        self._scan_interval = scan_interval
        self._clock = clock
        self._next_scan = float("-inf")
        self._holes: dict[str, _Hole] = {}
        self._late: dict[tuple[str, int], float] = {}  # delivered past; still probed for a while
        self._stalled: set[str] = set()

    @property
    def position(self) -> Position:
        return dict(self._pos)

    def request_scan(self) -> None:
        self._next_scan = float("-inf")

    def poll(self, limit: int) -> list[Event]:
        now = self._clock()
        extra: list[Event] = []
        if now >= self._next_scan:
            extra = self._scan(now)
            self._next_scan = now + self._scan_interval
        per_stream = []
        budget = max(limit - len(extra), 1)
        for stream in list(self._pos):
            events = self._read_stream(stream, budget, now)
            if events:
                per_stream.append(events)
                budget = max(budget - len(events), 0)
                if budget == 0:
                    break
        # Merge streams roughly by publish time; heapq.merge keeps each stream's own order
        # whatever the clocks say, and completeness never depends on them.
        return extra + list(heapq.merge(*per_stream, key=lambda e: e.time))

    # -- steady state ---------------------------------------------------------------------

    def _read_stream(self, stream: str, budget: int, now: float) -> list[Event]:
        out: list[Event] = []
        seq = self._pos[stream] + 1
        while len(out) < budget:
            item = self._load(stream, seq)
            if item is _MISSING:
                hole = self._holes.get(stream)
                if hole is None or hole.start != seq or now - hole.since < self._hole_timeout:
                    self._stalled.add(stream)
                    break
                self._deliver_past(stream, hole, now)
                seq = hole.resume
                continue
            self._holes.pop(stream, None)
            self._stalled.discard(stream)
            if isinstance(item, Event):
                out.append(item)
            self._pos[stream] = seq
            seq += 1
        return out

    def _deliver_past(self, stream: str, hole: _Hole, now: float) -> None:
        logger.warning(
            "stream %r: events %d..%d still missing after %.1fs while later ones exist; "
            "delivering past them (they are delivered late if they appear)",
            stream,
            hole.start,
            hole.resume - 1,
            self._hole_timeout,
        )
        self.counters["holes"] += 1
        for seq in range(hole.start, hole.resume):
            self._late[(stream, seq)] = now
        self._pos[stream] = hole.resume - 1
        del self._holes[stream]

    def _load(self, stream: str, seq: int) -> object:
        path = self._store.event_file(stream, seq)
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        except OSError as exc:
            if exc.errno in _ABSENT_ERRNOS:
                return _MISSING
            if exc.errno == errno.ELOOP:
                return self._skip(path, "is a symbolic link")
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return self._skip(path, "is not a regular file")
            limit = self._store.max_event_size
            raw = os.read(fd, limit + 1)
            while len(raw) <= limit and (chunk := os.read(fd, limit + 1 - len(raw))):
                raw += chunk
        except OSError as exc:
            if exc.errno in _ABSENT_ERRNOS:
                return _MISSING
            raise
        finally:
            os.close(fd)
        try:
            event = Event.decode(raw, max_size=limit)
        except CorruptEventError as exc:
            return self._skip(path, str(exc))
        if event.stream != stream or event.seq != seq:
            return self._skip(path, f"holds event {event.id}, not {stream}:{seq} (copied file?)")
        return event

    def _skip(self, path: os.PathLike[str] | str, why: str) -> object:
        logger.warning("skipping %s: %s", path, why)
        self.counters["skipped"] += 1
        return _SKIPPED

    # -- the periodic scan --------------------------------------------------------------

    def _scan(self, now: float) -> list[Event]:
        store = self._store
        for stream in store.streams():
            if stream not in self._pos:
                # New to us: everything it holds was published after we started following.
                oldest = store.oldest_seq(stream)
                self._pos[stream] = (oldest - 1) if oldest else 0
        for stream in list(self._stalled):
            if stream not in self._holes:
                self._look_past(stream, now)
        return self._probe_late(now)

    def _look_past(self, stream: str, now: float) -> None:
        """A stalled stream: is its next seq missing while later ones exist?"""
        store = self._store
        nxt = self._pos[stream] + 1
        later = next((s for s in (nxt + 1, nxt + 2) if store.exists(stream, s)), None)
        if later is None:
            segment = nxt // store.segment_size
            for seg in store.segments(stream):
                if seg < segment:
                    continue
                later = store.first_seq_after(stream, seg, nxt)
                if later is not None:
                    break
        if later is None:
            return  # simply caught up
        oldest = store.oldest_seq(stream)
        if oldest is not None and oldest >= later:
            gap = Gap(stream, nxt, later)
            logger.warning("gap in %s", gap)
            self.counters["gaps"] += 1
            self._pos[stream] = later - 1
            self._stalled.discard(stream)
            if self.on_gap is not None:
                self.on_gap(gap)
            return
        self._holes[stream] = _Hole(nxt, later, now)

    def _probe_late(self, now: float) -> list[Event]:
        found: list[Event] = []
        keep_for = max(10 * self._hole_timeout, 60.0)
        for key, since in list(self._late.items()):
            item = self._load(*key)
            if isinstance(item, Event):
                logger.warning("event %s:%d appeared late; delivering it now", *key)
                self.counters["late"] += 1
                found.append(item)
            elif item is _MISSING and now - since < keep_for:
                continue
            del self._late[key]
        return found
