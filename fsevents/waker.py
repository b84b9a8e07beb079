"""One "look now" signal from two sources: a file watcher and the poll timer.

The watcher is only a fast path. inotify never sees writes made by another NFS/sshfs client,
and a watch can miss events, so the periodic scan is what guarantees delivery; a watcher
event merely cuts the wait short. A missed or duplicated watcher event is therefore harmless.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .stores.base import NEW_NAME_EVENTS

logger = logging.getLogger(__name__)


class _Nudge(FileSystemEventHandler):
    def __init__(self, waker: Waker, names: frozenset[str] | None) -> None:
        self._waker = waker
        self._names = names

    def on_any_event(self, event: FileSystemEvent) -> None:
        name = os.path.basename(os.fsdecode(event.src_path))
        if self._names is not None and name not in self._names:
            return
        if event.is_directory:
            self._waker.saw_new_directory = True
        self._waker.wake()


class Waker:
    """Wait until a watched path changes or *poll_interval* passes, whichever is first.

    *events* are the watcher event types that wake (a store's ``watch_events``): the files
    store wakes on new names only, the SQLite store on modifications of its database and WAL.
    With *names*, only those file names directly in *paths* wake (not recursive), so a
    database in a busy directory such as /tmp does not wake on its neighbours' changes.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        poll_interval: float,
        watch: bool = True,
        events: Sequence[type[FileSystemEvent]] = NEW_NAME_EVENTS,
        names: frozenset[str] | None = None,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval!r}")
        self.poll_interval = poll_interval
        self._flag = threading.Event()
        #: Set when a directory appeared (a new stream or segment): worth a listing now.
        self.saw_new_directory = False
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self.watching = False
        if watch:
            self._start_observer(paths, list(events), names)

    def _start_observer(
        self,
        paths: Sequence[Path],
        events: list[type[FileSystemEvent]],
        names: frozenset[str] | None,
    ) -> None:
        observer = Observer()
        observer.daemon = True
        handler = _Nudge(self, names)
        try:
            for path in paths:
                observer.schedule(handler, str(path), recursive=names is None, event_filter=events)
            observer.start()
        except OSError as exc:
            # e.g. inotify watch limit reached: polling alone still delivers everything.
            logger.warning("file watcher unavailable (%s); relying on polling alone", exc)
            observer.unschedule_all()
            return
        self._observer = observer
        self.watching = True

    def wake(self) -> None:
        """Make the current or next wait return at once."""
        self._flag.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until woken or the poll interval (or *timeout*) passes; True if woken."""
        woken = self._flag.wait(self.poll_interval if timeout is None else timeout)
        self._flag.clear()
        return woken

    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        self.watching = False
        self._flag.set()

    def __enter__(self) -> Waker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
