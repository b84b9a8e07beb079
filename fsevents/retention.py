"""Retention for the files store: how old and how many events each stream keeps.

- Each node prunes **its own** stream (only its machine appends to it, so only it knows
  which event is the newest and must stay: a node that lost its local state derives its
  next seq from it). Whole old segments vanish with one directory rename (atomic on NFS,
  SMB and SFTP: readers see all of a segment or none of it), then are deleted at leisure
  from ``tmp/``; events at the boundary are unlinked one by one, oldest first, so a reader
  always sees a contiguous tail of the stream.
- Streams of nodes **gone** longer than the retention age are removed by anyone. "Gone" is
  judged with file times against the volume's clock (``_fs.volume_clock``), never against
  this node's clock, so a node whose clock runs ahead cannot delete a live node's stream.
- A reader that was reading a removed file gets ENOENT (or ESTALE on NFS) and treats it as
  absent; a durable consumer whose next event was pruned is told through ``Gap``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._fs import unique_name, volume_clock
from .errors import CorruptEventError
from .event import Event

if TYPE_CHECKING:
    from .stores.base import Store
    from .stores.files import FilesStore

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_AGE = 7 * 86400.0  # a consumer may be down over a long weekend
DEFAULT_RETENTION_COUNT = 100_000  # per stream; bounds the files a node leaves behind
DEFAULT_PRUNE_INTERVAL = 600.0
# A temp file older than this was left by a publisher (or pruner) that died mid-way.
DEFAULT_TMP_MAX_AGE = 3600.0
_GONE_ERRNOS = {errno.ENOENT, errno.ESTALE, errno.ENOTDIR}


@dataclass(frozen=True, slots=True)
class Retention:
    """Keep events younger than *age* seconds and at most *count* per stream (None: no limit).

    The newest event of a stream is always kept, whatever the limits say.
    """

    age: float | None = DEFAULT_RETENTION_AGE
    count: int | None = DEFAULT_RETENTION_COUNT

    def __post_init__(self) -> None:
        if self.age is not None and not self.age > 0:
            raise ValueError(f"retention_age must be > 0 seconds or None, got {self.age!r}")
        if self.count is not None and (type(self.count) is not int or self.count < 1):
            raise ValueError(f"retention_count must be an integer >= 1 or None, got {self.count!r}")


@dataclass(slots=True)
class PruneReport:
    """What one prune removed: events per stream, whole streams of gone nodes, temp files."""

    removed: dict[str, int] = field(default_factory=dict)
    removed_streams: list[str] = field(default_factory=list)
    removed_tmp: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "removed": self.removed,
            "removed_streams": self.removed_streams,
            "removed_tmp": self.removed_tmp,
        }


def prune_once(
    store: Store,
    node: str,
    retention: Retention,
    *,
    tmp_max_age: float,
    now: float,
    wait: bool = True,
) -> PruneReport | None:
    """Apply *retention* for *node* through any store, then sweep stale temps.

    One process of a machine prunes at a time (a local lock): with ``wait=False`` this
    returns None at once if a sibling process is pruning.
    """
    lock = store.local.lock(f"prune-{node}")
    if not lock.acquire(blocking=wait):
        return None
    try:
        report = store.prune(node, retention, now=now)
        report.removed_tmp = store.sweep(tmp_max_age)
    finally:
        lock.release()
    return report


def prune(store: FilesStore, node: str, retention: Retention, *, now: float) -> PruneReport:
    """Prune *node*'s own stream (ages by *now*, the node's clock), then gone nodes' streams."""
    report = PruneReport()
    removed = prune_stream(store, node, retention, now=now)
    if removed:
        report.removed[node] = removed
    if retention.age is not None:
        volume_now = volume_clock(store.tmp_dir)
        report.removed_streams = remove_gone_streams(
            store, retention.age, volume_now=volume_now, keep={node}
        )
    return report


def prune_stream(store: FilesStore, stream: str, retention: Retention, *, now: float) -> int:
    """Remove *stream*'s events beyond the limits; returns how many were removed."""
    newest = store.newest_seq(stream)
    cutoff = 0  # remove every seq <= cutoff
    if retention.count is not None:
        cutoff = max(cutoff, newest - retention.count)
    if retention.age is not None:
        cutoff = max(cutoff, _last_older_than(store, stream, now - retention.age))
    cutoff = min(cutoff, newest - 1)  # never the newest
    if cutoff < 1:
        return 0
    removed = _remove_through(store, stream, cutoff)
    if removed:
        logger.info("pruned %d events of stream %r (through seq %d)", removed, stream, cutoff)
    return removed


def _event_time(store: FilesStore, stream: str, seq: int) -> float | None:
    path = store.event_path(stream, seq)
    try:
        return Event.decode(path.read_bytes(), max_size=store.max_event_size).time
    except OSError:
        return None  # removed meanwhile: by someone pruning too
    except CorruptEventError:
        pass
    try:
        return path.stat().st_mtime  # unreadable as an event: its file time is the next best
    except OSError:
        return None


def _last_older_than(store: FilesStore, stream: str, threshold: float) -> int:
    """Highest seq whose event time is before *threshold* (0: none), reading few files.

    A segment whose last event is old is old throughout (a stream's times grow with its seq,
    all written by one machine's clock), so only the boundary segment is read file by file.
    """
    last_old = 0
    for segment in store.segments(stream):
        seqs = store.seqs_in_segment(stream, segment)
        if not seqs:
            continue
        last_time = _event_time(store, stream, seqs[-1])
        if last_time is None or last_time < threshold:
            last_old = seqs[-1]
            continue
        for seq in seqs:
            seq_time = _event_time(store, stream, seq)
            if seq_time is not None and seq_time >= threshold:
                return last_old
            last_old = seq
        return last_old
    return last_old


def _remove_through(store: FilesStore, stream: str, cutoff: int) -> int:
    removed = 0
    size = store.segment_size
    for segment in store.segments(stream):
        if segment * size > cutoff:
            break
        seqs = [s for s in store.seqs_in_segment(stream, segment) if s <= cutoff]
        directory = store.event_path(stream, segment * size).parent
        if (segment + 1) * size - 1 <= cutoff:
            if _discard_tree(store, directory):
                removed += len(seqs)
            continue
        for seq in seqs:  # oldest first: readers keep seeing a contiguous tail
            with contextlib.suppress(FileNotFoundError):
                os.unlink(store.event_path(stream, seq))
                removed += 1
    return removed


def _discard_tree(store: FilesStore, directory: os.PathLike[str]) -> bool:
    """Make *directory* vanish at once (rename into tmp/), then delete it there."""
    trash = store.tmp_dir / unique_name("trash")
    try:
        os.rename(directory, trash)
    except OSError as exc:
        if exc.errno in _GONE_ERRNOS:
            return False  # another process of this node pruned it first
        raise
    shutil.rmtree(trash, ignore_errors=True)
    return True


def remove_gone_streams(
    store: FilesStore, age: float, *, volume_now: float, keep: set[str]
) -> list[str]:
    """Remove the stream and heartbeat of every node silent for longer than *age*."""
    gone = []
    for stream in store.streams():
        if stream in keep:
            continue
        last = _last_activity(store, stream)
        if last is None or volume_now - last <= age:
            continue
        if _discard_tree(store, store.streams_dir / stream):
            gone.append(stream)
            with contextlib.suppress(OSError):
                os.unlink(store.nodes_dir / f"{stream}.json")
            logger.info(
                "removed the stream of node %r: silent for %.0fs, over the retention of %.0fs",
                stream,
                volume_now - last,
                age,
            )
    return gone


def _last_activity(store: FilesStore, stream: str) -> float | None:
    """Newest mtime of the node's heartbeat, its newest event and its stream dir."""
    candidates = [
        store.nodes_dir / f"{stream}.json",
        store.event_path(stream, store.newest_seq(stream)),
        store.streams_dir / stream,
    ]
    times = []
    for path in candidates:
        try:
            times.append(path.stat().st_mtime)
        except OSError:
            continue
    return max(times) if times else None
