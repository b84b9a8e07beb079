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
# O_NOFOLLOW: a symlink planted in a stream must not make us read another file.
# O_NONBLOCK: opening a FIFO planted there would otherwise block until a writer appears,
# hanging the follower; on regular files it changes nothing.
_NOFOLLOW = (
    getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
)


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
        try:
            return self._poll(limit)
        except OSError:
            # The volume failed (EIO, ENOTCONN, ESTALE on the root...): make the retry check
            # the root first, so an unmounted volume's empty mount point is not mistaken for
            # "no new events" and the outage does not look over after one quiet poll.
            self.request_scan()
            raise

    def _poll(self, limit: int) -> list[Event]:
        now = self._clock()
        scan_due = now >= self._next_scan
        if scan_due:
            self._store.check_root()
            self._discover_streams()
        events = self._read_streams(list(self._pos), limit, now)
        if scan_due:
            self._next_scan = now + self._scan_interval
            jumped = [s for s in list(self._stalled) if self._look_past(s, now)]
            events += self._read_streams(jumped, limit - len(events), now)
            events += self._probe_late(now)
        return events

    def _read_streams(self, streams: list[str], limit: int, now: float) -> list[Event]:
        per_stream = []
        budget = limit
        # An equal share per stream: a stream with a long backlog (catch-up) must not keep
        # the others waiting until it is drained; delivery stays roughly by publish time.
        share = max(1, -(-limit // max(len(streams), 1)))
        for stream in streams:
            if budget <= 0:
                break
            events = self._read_stream(stream, min(share, budget), now)
            if events:
                per_stream.append(events)
                budget -= len(events)
        # Merge streams roughly by publish time; heapq.merge keeps each stream's own order
        # whatever the clocks say, and completeness never depends on them.
        return list(heapq.merge(*per_stream, key=lambda e: e.time))

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

    def _discover_streams(self) -> None:
        store = self._store
        for stream in store.streams():
            if stream not in self._pos:
                # New to us: everything it holds was published after we started following.
                oldest = store.oldest_seq(stream)
                self._pos[stream] = (oldest - 1) if oldest else 0

    def _look_past(self, stream: str, now: float) -> bool:
        """A stalled stream: were its next events pruned (gap), or are they late (hole)?

        Records a hole to wait for, or, for a gap, moves the position past it and returns True.
        Every name is confirmed by opening it: a listing can still show files pruned through
        another client for ~20 s (sshfs), which made a gap look like a run of holes, one per
        stale name (measured in test_netvol.py).
        """
        if stream in self._holes:
            return False
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
            return False  # simply caught up
        oldest = store.oldest_seq(stream)
        if oldest is not None and oldest > nxt:
            gap = Gap(stream, nxt, oldest)
            logger.warning("gap in %s", gap)
            self.counters["gaps"] += 1
            self._pos[stream] = oldest - 1
            self._stalled.discard(stream)
            if self.on_gap is not None:
                self.on_gap(gap)
            return True
        self._holes[stream] = _Hole(nxt, later, now)
        return False

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
