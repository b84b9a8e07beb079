"""SQLite plumbing for the SQLite store: targets, the volume check, connections, retries.

Why one connection per thread *and* per process: SQLite's "How To Corrupt An SQLite Database
File" (section 2.6) warns never to carry an open connection across ``fork()``. A pre-fork web
server forks workers after the application (and its Bus) was created, so a connection is
tagged with the pid that opened it and a forked child opens its own. The parent's connection
objects that a child inherits are kept referenced and never closed there: closing them would
release POSIX locks and may checkpoint or delete the parent's WAL files.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import PublishError, RootError
from ..fstype import filesystem_type, is_network_type

T = TypeVar("T")
logger = logging.getLogger(__name__)

SCHEME = "sqlite:"
SUFFIXES = (".db", ".sqlite", ".sqlite3")
JOURNAL_MODES = ("wal", "delete", "truncate", "persist")
SYNCHRONOUS = ("off", "normal", "full", "extra")
#: Options a ``sqlite:`` URL may carry in its query string (the SqliteStore keywords).
URL_OPTIONS = ("journal_mode", "synchronous", "busy_timeout")

# Connections a forked child inherited from its parent: referenced forever, never used.
_INHERITED: list[sqlite3.Connection] = []


def parse_target(target: str | os.PathLike[str]) -> tuple[Path, dict[str, str]]:
    """The database path and the URL options of a target.

    ``sqlite:///srv/events.db`` is absolute (as in ``file:///``), ``sqlite:events.db`` is
    relative; ``?journal_mode=delete&synchronous=full&busy_timeout=10`` set options.
    """
    text = os.fspath(target)
    if not text.startswith(SCHEME):
        return Path(text).expanduser(), {}
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise RootError(
            f"{text!r}: a sqlite: URL names a local file (sqlite:///abs/path.db or "
            f"sqlite:rel/path.db), not host {parts.netloc!r}; share events between hosts "
            "with the files store (a directory on the shared volume)"
        )
    options = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
    unknown = sorted(set(options) - set(URL_OPTIONS))
    if unknown:
        raise RootError(
            f"{text!r}: unknown option(s) {', '.join(unknown)}; use {', '.join(URL_OPTIONS)}"
        )
    if not parts.path:
        raise RootError(f"{text!r} names no database file; e.g. sqlite:///srv/events.db")
    return Path(unquote(parts.path)).expanduser(), options


def check_volume(path: Path, journal_mode: str) -> None:
    """Refuse WAL on a network file system; warn about a rollback journal there."""
    fstype = filesystem_type(path)
    if not is_network_type(fstype):
        return
    if journal_mode == "wal":
        raise RootError(
            f"{path} is on a network file system ({fstype}): SQLite's WAL mode does "
            "not work there (its -shm index is shared memory of one host) and network "
            "locks are unreliable, so processes on different hosts would corrupt or miss "
            "events. Use the files store (a directory, e.g. --root "
            f"{path.parent / 'events'}), or, if every process runs on ONE host, ask "
            "for a rollback journal explicitly: sqlite:///…?journal_mode=delete"
        )
    logger.warning(
        "%s is on a network file system (%s): SQLite with a %s journal relies on network "
        "locks, which SQLite's documentation calls unreliable; keep every process on one "
        "host, or use the files store",
        path,
        fstype,
        journal_mode,
    )


def choice(name: str, value: str, allowed: Sequence[str]) -> str:
    value = str(value).lower()
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def seconds(name: str, value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds > 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
    return seconds


def is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (named only in 3.11+)
    return "locked" in str(exc) or "busy" in str(exc)


class Connections:
    """One sqlite3 connection per (process, thread), each set up by *setup* when opened."""

    def __init__(
        self, path: Path, *, busy_timeout: float, setup: Callable[[sqlite3.Connection], None]
    ):
        self.path = path
        self.busy_timeout = busy_timeout
        self._setup = setup
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[sqlite3.Connection] = []
        self.commits = 0  # this process's own commits: PRAGMA data_version ignores them

    def get(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:
            _INHERITED.extend(self._opened)
            self._reset()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.open()
            self._local.conn = conn
        return conn

    def open(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (BEGIN IMMEDIATE for writes).
        # check_same_thread=False only so that close() may close every thread's connection.
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._opened.append(conn)
        return conn

    def write(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run *body* in a ``BEGIN IMMEDIATE`` transaction; retry while the database is busy.

        IMMEDIATE takes the write lock up front, so two writers never both read and then
        collide on upgrade (a deferred transaction would fail with SQLITE_BUSY there without
        calling the busy handler). The connection's busy timeout covers the usual waits; the
        loop covers the cases where SQLite returns BUSY at once (e.g. WAL recovery).
        Raises PublishError (an OSError) when SQLite fails: nothing was written.
        """
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.001
        while True:
            try:
                conn = self.get()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = body(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                if is_busy(exc) and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
                    continue
                raise PublishError(
                    errno.EIO,
                    f"cannot write to {self.path}: {exc}; nothing was written; check space "
                    "and permissions, and that no process holds a long transaction",
                ) from exc
            self.commits += 1
            return result

    def read(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run *body* in one read transaction: one consistent snapshot of the database.

        Raises RootError (an OSError) when SQLite fails.
        """
        try:
            conn = self.get()
            conn.execute("BEGIN")
            try:
                return body(conn)
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise RootError(errno.EIO, f"cannot read {self.path}: {exc}") from exc

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """The rows of one read-only statement (in autocommit mode, its own snapshot)."""
        try:
            return self.get().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise RootError(errno.EIO, f"cannot read {self.path}: {exc}") from exc

    def close(self) -> None:
        if os.getpid() != self._pid:
            return  # a forked child: the connections are the parent's
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()
