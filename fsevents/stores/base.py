"""The contract every store keeps (DESIGN.md, "Stores"), and what they share."""

from __future__ import annotations

import collections
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileSystemEvent,
)

from ..cursor import LocalState, Position
from ..errors import InvalidEventError
from ..event import DEFAULT_MAX_EVENT_SIZE, Draft, Event
from ..retention import PruneReport, Retention

#: Watcher events that mean "a new name appeared". Opens and closes (our own reads) must not
#: wake a reader, or every scan would trigger the next one (a wake storm seen on sshfs).
NEW_NAME_EVENTS: tuple[type[FileSystemEvent], ...] = (
    FileCreatedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirMovedEvent,
)


#: Why a store refuses to start when it may not create its root (create=False).
NOT_A_ROOT = (
    "is not an fsevents root yet, and creating one was not allowed (create=False, "
    "--no-create): is the shared volume mounted? Create the root once without that option"
)

# More than the wire format's fields other than the payload can take: names <= 64, topic
# <= 200, origin <= 200 characters (4 bytes each at most), numbers, a key id and signature.
_ENVELOPE_BOUND = 4096


@dataclass(frozen=True, slots=True)
class Gap:
    """Events a reader can never receive: they were pruned before it read them."""

    stream: str
    first_missing: int
    resumed_at: int

    def __str__(self) -> str:
        return (
            f"stream {self.stream!r}: events {self.first_missing}..{self.resumed_at - 1} "
            "were removed by retention before this consumer read them"
        )


GapHandler = Callable[[Gap], None]


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What ``status`` shows of one stream: retained events, their seq range and size."""

    stream: str
    events: int
    oldest: int | None
    newest: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "events": self.events,
            "oldest": self.oldest,
            "newest": self.newest,
            "bytes": self.bytes,
        }


class Reader(ABC):
    """Follows one store from a position. Owned by one thread; not thread-safe."""

    def __init__(self, on_gap: GapHandler | None = None) -> None:
        self.on_gap = on_gap
        self.counters: collections.Counter[str] = collections.Counter()

    @property
    @abstractmethod
    def position(self) -> Position:
        """Highest contiguous seq delivered, per stream (a copy)."""

    @abstractmethod
    def poll(self, limit: int) -> list[Event]:
        """Events after the position, up to *limit*, each stream in seq order."""

    def request_scan(self) -> None:  # noqa: B027 - optional hook
        """Do the periodic scan (new streams, holes) at the next poll, not on schedule."""


class Store(ABC):
    """Durable, append-only storage of events, shared by every node of a farm."""

    #: Stable id of this store (not of its path): keys this machine's local state for it.
    identity: str
    local: LocalState
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    #: Which watcher events on watch_paths() wake a reader (see waker.py).
    watch_events: tuple[type[FileSystemEvent], ...] = NEW_NAME_EVENTS

    @abstractmethod
    def append(self, stream: str, drafts: Sequence[Draft]) -> list[Event]:
        """Append *drafts* to *stream* in order; return them once durable."""

    @abstractmethod
    def head(self) -> Position:
        """The position just after the newest visible event of every stream ("now")."""

    def beginning(self) -> Position:
        """The position before the oldest retained event of every stream."""
        return {}

    @abstractmethod
    def reader(
        self,
        position: Position,
        *,
        hole_timeout: float,
        scan_interval: float,
        on_gap: GapHandler | None = None,
    ) -> Reader:
        """A reader that delivers everything after *position*."""

    @abstractmethod
    def watch_paths(self) -> list[Path]:
        """Local paths whose changes mean "new events may be there"."""

    def watch_names(self) -> frozenset[str] | None:
        """Watch only these file names, directly in watch_paths(); None: everything, recursively."""
        return None

    # -- what every store shares ----------------------------------------------------------

    def encode_batch(self, stream: str, first: int, drafts: Sequence[Draft]) -> list[bytes]:
        """The wire bytes of each draft; an oversized one fails the batch before any write."""
        blobs = [Event.encode(d, stream, first + i) for i, d in enumerate(drafts)]
        for i, blob in enumerate(blobs):
            self._check_size(drafts[i], i, len(blob))
        return blobs

    def check_sizes(self, stream: str, first: int, drafts: Sequence[Draft]) -> None:
        """What encode_batch checks, for stores that keep the fields apart (no wire bytes).

        Everything but the payload is bounded (validated names, topic, origin, numbers and a
        signature: well under _ENVELOPE_BOUND bytes), so only a payload near the limit is
        worth encoding whole to measure.
        """
        for i, draft in enumerate(drafts):
            payload = len(draft.data_json) * 4  # an upper bound of its UTF-8 length
            if payload + _ENVELOPE_BOUND > self.max_event_size:
                self._check_size(draft, i, len(Event.encode(draft, stream, first + i)))

    def _check_size(self, draft: Draft, index: int, size: int) -> None:
        if size > self.max_event_size:
            raise InvalidEventError(
                f"event {index} of the batch (topic {draft.topic!r}) is {size} bytes, "
                f"over the {self.max_event_size}-byte limit; send a smaller payload or a "
                "reference to it, or raise max_event_size on every node",
            )

    @staticmethod
    def events_of(stream: str, first: int, drafts: Sequence[Draft]) -> list[Event]:
        """The events *drafts* became once stored at *first*, *first* + 1, ... of *stream*."""
        return [
            Event(stream, first + i, d.topic, d.time, d.node, d.origin, json.loads(d.data_json))
            for i, d in enumerate(drafts)
        ]

    @abstractmethod
    def write_heartbeat(self, node: str, doc: dict[str, Any]) -> None:
        """Publish this node's liveness document (replacing its previous one)."""

    @abstractmethod
    def read_heartbeat(self, node: str) -> dict[str, Any] | None:
        """The last liveness document of *node*, or None."""

    def sweep(self, max_age: float) -> int:
        """Remove leftovers of crashed writers older than *max_age* seconds; how many."""
        return 0

    @abstractmethod
    def read_heartbeats(self) -> dict[str, dict[str, Any]]:
        """Every node's last liveness document, by node name (what ``status`` shows)."""

    @abstractmethod
    def describe_streams(self) -> list[StreamInfo]:
        """Each stream's retained events: count, oldest and newest seq, bytes."""

    @abstractmethod
    def prune(self, node: str, retention: Retention, *, now: float) -> PruneReport:
        """Apply *retention* to *node*'s own stream and remove streams of gone nodes.

        *now* is the node's clock (its own events carry its own times). Never removes the
        newest event of a stream; removing what a reader is reading must be harmless.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or handles."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
