"""Positions, this machine's local state directory, and durable cursors.

A position is a vector ``{stream: highest contiguous seq delivered}``: it never depends on
clocks, and each writer's stream is read in order on its own.

Local state lives on the node's own disk (platformdirs), never on the share: POSIX and
``flock`` locks do not exclude across NFS/sshfs clients, so sequence allocation and cursor
ownership are guarded by locks that only the processes of this machine contend for.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import platformdirs
from filelock import FileLock, Timeout

from . import _forksafe
from ._fs import replace_atomic
from .errors import ConsumerBusyError, RootError
from .event import NAME_RE

Position = dict[str, int]

STATE_DIR_ENV = "FSEVENTS_STATE_DIR"


def resolve_state_dir(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """The machine's state directory: argument, then $FSEVENTS_STATE_DIR, then platformdirs."""
    chosen = state_dir or os.environ.get(STATE_DIR_ENV) or platformdirs.user_state_dir("fsevents")
    return Path(chosen).expanduser()


def validate_position(position: Any) -> Position:
    if not isinstance(position, dict) or not all(_valid_entry(k, v) for k, v in position.items()):
        raise ValueError(
            f"invalid position {position!r}: expected a dict of stream name to a seq >= 0"
        )
    return dict(position)


def _valid_entry(stream: object, seq: object) -> bool:
    valid_name = isinstance(stream, str) and NAME_RE.fullmatch(stream) and stream[0] != "."
    return bool(valid_name) and type(seq) is int and seq >= 0


class LocalState:
    """This machine's private state for one store: counters, locks, durable cursors."""

    def __init__(self, base: Path, store_id: str) -> None:
        self.base = base
        self.dir = base / "stores" / store_id
        try:
            (self.dir / "locks").mkdir(parents=True, exist_ok=True)
            (self.dir / "cursors").mkdir(exist_ok=True)
            (self.dir / "counters").mkdir(exist_ok=True)
        except OSError as exc:
            raise RootError(
                f"cannot create the local state directory {self.dir}: {exc.strerror}; "
                f"set {STATE_DIR_ENV} or state_dir= to a writable local directory"
            ) from exc
        self.machine_id = self._machine_id()
        self._locks: dict[str, LocalLock] = {}
        self._locks_guard = threading.Lock()
        _forksafe.track(self)

    def _machine_id(self) -> str:
        """A random id made once per state directory: what tells two machines apart."""
        path = self.base / "machine-id"
        with FileLock(str(self.base / "machine-id.lock")):
            if path.exists():
                return path.read_text().strip()
            ident = secrets.token_hex(8)
            replace_atomic(path, ident.encode())
            return ident

    def _after_fork_in_child(self) -> None:
        self._locks_guard = threading.Lock()  # may have been held by a parent's thread

    def lock(self, name: str) -> LocalLock:
        """One lock object per name and LocalState, kept for the life of the process."""
        with self._locks_guard:
            if name not in self._locks:
                self._locks[name] = LocalLock(self.dir / "locks" / f"{name}.lock")
            return self._locks[name]

    def read_counter(self, stream: str) -> int | None:
        """The last seq this machine wrote to *stream*. Call under the stream's lock."""
        try:
            return int((self.dir / "counters" / stream).read_bytes().strip(b"\0 \n"))
        except (OSError, ValueError):
            return None

    def write_counter(self, stream: str, seq: int) -> None:
        """Overwrite the counter in place. Call under the stream's lock.

        In place, not write-temp-and-rename: creating and renaming a file on every publish
        costs ext4 two journalled metadata operations, about a third of a single publish
        (measured by ``fsevents bench``). Readers hold the same lock, so none sees a write
        in progress; the fixed width means a longer old value never survives behind a
        shorter new one, and the 21 bytes lie in one disk sector, which drives write whole.
        No fsync: a counter lost in a power cut reads as None or as an older seq, and both
        are re-derived from the stream itself (files.py, ``append``).
        """
        fd = os.open(self.dir / "counters" / stream, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b"%020d\n" % seq, 0)
        finally:
            os.close(fd)

    def cursor(self, consumer: str) -> DurableCursor:
        return DurableCursor(self.dir / "cursors", consumer)


class LocalLock:
    """Excludes the other processes and threads of this machine: ``flock`` on a local file.

    Taken once per publish, so it keeps its descriptor open: filelock's FileLock opens,
    locks, unlocks and closes on every use, which cost about a fifth of a single publish
    (measured by ``fsevents bench``). flock excludes open file descriptions, not threads,
    so a thread lock comes first; and a forked child shares its parent's description, so
    it opens its own before first use.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        self._pid = -1
        self._threads = threading.Lock()
        self._reopen = threading.Lock()
        _forksafe.track(self)

    def _after_fork_in_child(self) -> None:
        # Another thread of the parent may have held either lock at the instant of the fork
        # (a follower's heartbeat): in the child it would stay locked forever.
        self._threads = threading.Lock()
        self._reopen = threading.Lock()

    def _descriptor(self) -> int:
        with self._reopen:
            if self._pid != os.getpid():
                if self._fd >= 0:
                    os.close(self._fd)  # the parent's: closing our copy leaves its lock alone
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                self._pid = os.getpid()
            return self._fd

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take the lock; with ``blocking=False``, return False at once if it is taken."""
        fd = self._descriptor()
        if not self._threads.acquire(blocking):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            self._threads.release()
            return False
        except BaseException:
            self._threads.release()
            raise
        return True

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def __enter__(self) -> LocalLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class DurableCursor:
    """A consumer's position, saved atomically after each dispatched batch.

    Held by one process at a time (a local lock): two processes advancing one cursor would
    each skip what the other received.
    """

    def __init__(self, directory: Path, consumer: str) -> None:
        self.path = directory / f"{consumer}.json"
        self.failed_path = directory / f"{consumer}.failed.jsonl"
        self.consumer = consumer
        self._lock = FileLock(str(directory / f"{consumer}.lock"), timeout=0)

    def acquire(self) -> None:
        try:
            self._lock.acquire()
        except Timeout:
            raise ConsumerBusyError(
                f"durable consumer {self.consumer!r} is in use by another process on this "
                f"machine (lock {self._lock.lock_file}); give each process its own consumer name"
            ) from None

    def release(self) -> None:
        self._lock.release()

    def load(self) -> Position | None:
        try:
            doc = json.loads(self.path.read_bytes())
            return validate_position(doc["position"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RootError(
                f"cannot read the cursor of consumer {self.consumer!r} at {self.path}: {exc}; "
                "fix or delete the file (deleting it restarts the consumer at 'now')"
            ) from exc

    def load_or_create(self, start: Callable[[], Position]) -> Position:
        """The saved position, or *start()* saved at once if there is none yet.

        Recording the starting point when the consumer is created means nothing published
        after that is missed, even if the consumer is first started much later.
        """
        self.acquire()
        try:
            position = self.load()
            if position is None:
                position = start()
                self.save(position)
            return position
        finally:
            self.release()

    def save(self, position: Position) -> None:
        replace_atomic(self.path, json.dumps({"position": position}).encode())

    def record_failure(self, event_dict: dict[str, Any], error: str) -> None:
        with open(self.failed_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"event": event_dict, "error": error}) + "\n")
