"""The files store: one immutable JSON file per event on a shared directory (wire format v1).

Layout (DESIGN.md)::

    <root>/fsevents.json                       format marker, written once
    <root>/streams/<stream>/<segment>/<seq>.json
    <root>/nodes/<node>.json                   heartbeats
    <root>/tmp/                                temp files before link
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._fs import (
    check_modes,
    fsync_dir,
    link_no_replace,
    make_dirs,
    process_umask,
    read_small,
    replace_atomic,
    sweep_temps,
    unique_name,
    unlink_quietly,
    visible,
    volume_advice,
    volume_clock,
    write_file,
)
from ..cursor import LocalState, Position, resolve_state_dir
from ..errors import (
    NodeConflictError,
    PublishError,
)
from ..event import DEFAULT_MAX_EVENT_SIZE, NAME_RE, Draft, Event
from ..nodes import claim
from ..retention import PruneReport, Retention
from ..retention import prune as retention_prune
from .base import GapHandler, Reader, Store, StreamInfo
from .files_root import check_marker, open_root

logger = logging.getLogger(__name__)

DEFAULT_SEGMENT_SIZE = 1000
# Group-shareable: nodes that run as different users of one group can all write. Creating and
# removing names takes write permission on the *directory* (2775, setgid so that what is
# created in it keeps the farm's group); files are never rewritten in place (heartbeats are
# replaced by rename), so the group needs only to read them. 0o644 also means no fchmod per
# event under the common umask 022: that fchmod cost a third of publish throughput on ext4
# (measured with 300 fsynced publishes: ~680-880/s with it, ~1,320/s without).
DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o2775

_HEARTBEAT_BLOCK = 4096
_SEQ_FILE = re.compile(r"(\d{1,18})\.json")
_SEGMENT_DIR = re.compile(r"\d{1,15}")


class FilesStore(Store):
    """Events as files under *root*; lock-free on the share, so it works on NFS, SMB, sshfs."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        state_dir: str | os.PathLike[str] | None = None,
        fsync: bool = True,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        file_mode: int = DEFAULT_FILE_MODE,
        dir_mode: int = DEFAULT_DIR_MODE,
        create: bool = True,
    ) -> None:
        self.root = Path(root).expanduser()
        self.fsync = fsync
        self.file_mode, self.dir_mode = check_modes(file_mode, dir_mode)
        umask = process_umask()
        # fchmod only when the umask would narrow the mode: it costs a round trip on NFS.
        self._exact_mode = umask is None or bool(umask & file_mode)
        self.max_event_size = max_event_size
        self.streams_dir = self.root / "streams"
        self._streams_prefix = f"{self.streams_dir}{os.sep}"
        self.nodes_dir = self.root / "nodes"
        self.tmp_dir = self.root / "tmp"
        meta = open_root(
            self.root,
            (self.root, self.streams_dir, self.nodes_dir, self.tmp_dir),
            dir_mode=self.dir_mode,
            tmp_dir=self.tmp_dir,
            write=lambda path, data: self._write_file(path, data, fsync=True),
            segment_size=segment_size,
            create=create,
        )
        self.identity = str(meta["id"])
        self.segment_size = int(meta["segment_size"])
        self.local = LocalState(resolve_state_dir(state_dir), self.identity)

    def __repr__(self) -> str:
        return f"FilesStore({str(self.root)!r})"

    def check_root(self) -> None:
        """Raise VolumeUnavailableError unless the root still holds this store."""
        check_marker(self.root, self.identity)

    # -- layout -------------------------------------------------------------------------

    def event_path(self, stream: str, seq: int) -> Path:
        return Path(self.event_file(stream, seq))

    def event_file(self, stream: str, seq: int) -> str:
        """The event's path as a string: what the read path and probes use, since building
        a Path per probe cost a third of a catch-up (measured by ``fsevents bench``)."""
        return f"{self._streams_prefix}{stream}/{seq // self.segment_size:08d}/{seq:012d}.json"

    def streams(self) -> list[str]:
        """Stream names visible in a listing (may lag on network volumes)."""
        try:
            names = os.listdir(self.streams_dir)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if NAME_RE.fullmatch(n) and not n.startswith("."))

    def segments(self, stream: str) -> list[int]:
        try:
            names = os.listdir(self.streams_dir / stream)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(int(n) for n in names if _SEGMENT_DIR.fullmatch(n))

    def seqs_in_segment(self, stream: str, segment: int) -> list[int]:
        try:
            names = os.listdir(self.streams_dir / stream / f"{segment:08d}")
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = (_SEQ_FILE.fullmatch(n) for n in names)
        return sorted(int(m.group(1)) for m in found if m)

    def first_seq_after(self, stream: str, segment: int, seq: int) -> int | None:
        """The lowest seq above *seq* listed in *segment* that still opens by name, or None.

        Zero-padded names sort as their numbers do, so a string comparison skips the names
        at or below *seq* without parsing them: a caught-up reader's scan lists its current
        segment (up to segment_size names) for every stream, every scan_interval. A listing
        can still name files another client pruned (sshfs ~20 s), so candidates are
        confirmed by opening them, lowest first.
        """
        try:
            names = os.listdir(self.streams_dir / stream / f"{segment:08d}")
        except (FileNotFoundError, NotADirectoryError):
            return None
        floor = f"{seq:012d}.json"
        found = (_SEQ_FILE.fullmatch(n) for n in names if len(n) > len(floor) or n > floor)
        candidates = sorted(int(m.group(1)) for m in found if m)
        return next((c for c in candidates if self.exists(stream, c)), None)

    def exists(self, stream: str, seq: int) -> bool:
        return visible(self.event_file(stream, seq))

    def oldest_seq(self, stream: str) -> int | None:
        """Lowest seq of *stream* that still exists.

        A listing can still name files that another client pruned (sshfs: ~20 s, NFS:
        acdirmax), so each candidate is confirmed by name before it counts.
        """
        for segment in self.segments(stream):
            for seq in self.seqs_in_segment(stream, segment):
                if self.exists(stream, seq):
                    return seq
        return None

    def newest_seq(self, stream: str) -> int:
        """Highest seq of *stream*: the newest listed, then probed upward by name.

        Listings lag on network volumes; an open by name does not, so the probe finds what the
        listing has not caught up with yet.
        """
        newest = 0
        for segment in reversed(self.segments(stream)):
            seqs = self.seqs_in_segment(stream, segment)
            if seqs:
                newest = seqs[-1]
                break
        while self.exists(stream, newest + 1):
            newest += 1
        return newest

    def beginning(self) -> Position:
        """Just before the oldest retained event of each stream, taken now: what is pruned
        later, before a reader gets to it, is reported to that reader as a gap."""
        return {stream: (self.oldest_seq(stream) or 1) - 1 for stream in self.streams()}

    def head(self) -> Position:
        return {stream: self.newest_seq(stream) for stream in self.streams()}

    def watch_paths(self) -> list[Path]:
        return [self.streams_dir]

    def reader(
        self,
        position: Position,
        *,
        hole_timeout: float,
        scan_interval: float,
        on_gap: GapHandler | None = None,
    ) -> Reader:
        from .files_reader import FilesReader

        return FilesReader(
            self, position, hole_timeout=hole_timeout, scan_interval=scan_interval, on_gap=on_gap
        )

    # -- writing ------------------------------------------------------------------------

    def append(self, stream: str, drafts: Sequence[Draft]) -> list[Event]:
        if not drafts:
            return []
        # The lock is local: it serialises this machine's processes, which share the node's
        # stream. Held across write+link so that a publisher that dies before linking leaves
        # its seq free for the next one (no holes from crashes).
        with self.local.lock(f"stream-{stream}"):
            first = self._next_seq(stream)
            try:
                return self._write_batch(stream, first, drafts)
            except _SeqTaken as taken:
                if taken.index > 0:
                    raise self._conflict(stream, taken.seq) from None
                # Our counter was stale (a crash between link and counter update, or lost
                # local state). Safe to resync only if no other machine owns the name.
                self._check_owner(stream, taken.seq)
                first = self._probe_free(stream, taken.seq)
                try:
                    return self._write_batch(stream, first, drafts)
                except _SeqTaken as again:
                    raise self._conflict(stream, again.seq) from None

    def _next_seq(self, stream: str) -> int:
        counter = self.local.read_counter(stream)
        return (self.newest_seq(stream) if counter is None else counter) + 1

    def _probe_free(self, stream: str, seq: int) -> int:
        while self.exists(stream, seq):
            seq += 1
        return seq

    def _write_batch(self, stream: str, first: int, drafts: Sequence[Draft]) -> list[Event]:
        blobs = self.encode_batch(stream, first, drafts)
        temps: list[Path] = []
        linked = 0
        try:
            for blob in blobs:
                temps.append(self.tmp_dir / unique_name(stream))
                self._write_file(temps[-1], blob, fsync=self.fsync)
            touched: set[Path] = set()
            for i, tmp in enumerate(temps):
                final = self.event_path(stream, first + i)
                self._link(tmp, final, i)
                linked += 1
                touched.add(final.parent)
            if self.fsync:
                for directory in touched:
                    fsync_dir(directory)
        except OSError as exc:
            raise PublishError(
                exc.errno,
                f"cannot write event to {self.root}: {exc.strerror} ({exc.filename}); "
                f"nothing was acknowledged; {volume_advice(exc.errno)}",
            ) from exc
        finally:
            for tmp in temps[linked:]:
                unlink_quietly(tmp)
        self.local.write_counter(stream, first + len(drafts) - 1)
        return self.events_of(stream, first, drafts)

    def _link(self, tmp: Path, final: Path, index: int) -> None:
        for _ in range(2):
            try:
                link_no_replace(tmp, final)
                return
            except FileExistsError:
                raise _SeqTaken(index, int(final.stem)) from None
            except FileNotFoundError:
                # First event of a new segment (or stream): make its directory, then retry.
                make_dirs(final.parent, self.dir_mode)
                if self.fsync:
                    fsync_dir(final.parent.parent)
        link_no_replace(tmp, final)

    def _check_owner(self, stream: str, seq: int) -> None:
        try:
            claim(self, stream)
        except NodeConflictError:
            raise self._conflict(stream, seq) from None

    def _conflict(self, stream: str, seq: int) -> NodeConflictError:
        return NodeConflictError(
            errno.EEXIST,
            f"event {seq} of stream {stream!r} already exists and this machine did not write "
            f"it: another machine publishes as node {stream!r}; give every machine its own "
            "node name (--node / FSEVENTS_NODE)",
            str(self.event_path(stream, seq)),
        )

    def _write_file(self, path: Path, data: bytes, *, fsync: bool) -> None:
        write_file(path, data, fsync=fsync, mode=self.file_mode, exact_mode=self._exact_mode)

    def sweep(self, max_age: float) -> int:
        """Remove temp files older than *max_age* seconds (left by crashed writers)."""
        return sweep_temps(self.tmp_dir, max_age, now=volume_clock(self.tmp_dir))

    # -- retention and status -----------------------------------------------------------

    def prune(self, node: str, retention: Retention, *, now: float) -> PruneReport:
        return retention_prune(self, node, retention, now=now)

    def describe_streams(self) -> list[StreamInfo]:
        """Counts from the ends of each stream, found by name: a listing can be ~20 s stale.

        Bytes are summed over the listed files and scaled up to the counted events.
        """
        infos = []
        for stream in self.streams():
            listed, size = 0, 0
            for segment in self.segments(stream):
                for seq in self.seqs_in_segment(stream, segment):
                    with contextlib.suppress(OSError):  # pruned since the listing
                        size += self.event_path(stream, seq).lstat().st_size
                        listed += 1
            oldest, newest = self.oldest_seq(stream), self.newest_seq(stream)
            events = 0 if oldest is None else newest - oldest + 1
            scaled = round(size / listed * events) if listed else 0
            infos.append(StreamInfo(stream, events, oldest, newest, scaled))
        return infos

    # -- heartbeats ---------------------------------------------------------------------

    def write_heartbeat(self, node: str, doc: dict[str, Any]) -> None:
        # Padded with spaces to a multiple of 4 KiB, so the file's size rarely changes: another
        # sshfs client that has the old size in its attribute cache reads a replaced file only
        # up to that size (a longer new document came back cut, measured in test_netvol.py).
        data = json.dumps(doc).encode()
        data += b" " * (-len(data) % _HEARTBEAT_BLOCK)
        replace_atomic(
            self.nodes_dir / f"{node}.json",
            data,
            fsync=False,
            tmp_dir=self.tmp_dir,
            mode=self.file_mode,
            exact_mode=self._exact_mode,
        )

    def read_heartbeat(self, node: str) -> dict[str, Any] | None:
        try:
            doc = json.loads(read_small(self.nodes_dir / f"{node}.json"))
        except (OSError, ValueError, RecursionError):
            return None
        return doc if isinstance(doc, dict) else None

    def read_heartbeats(self) -> dict[str, dict[str, Any]]:
        try:
            names = os.listdir(self.nodes_dir)
        except FileNotFoundError:
            return {}
        beats = {}
        for name in sorted(names):
            node = name.removesuffix(".json")
            if name.endswith(".json") and NAME_RE.fullmatch(node) and not node.startswith("."):
                doc = self.read_heartbeat(node)
                if doc is not None:
                    beats[node] = doc
        return beats


class _SeqTaken(Exception):
    def __init__(self, index: int, seq: int) -> None:
        self.index = index
        self.seq = seq
