"""Shared settings: a named JSON document that every process of the farm holds and follows.

Stored on the volume as immutable numbered versions (DESIGN.md, wire format)::

    <root>/settings/<name>/<version>.json     version = 1, 2, 3 ..., zero-padded to 12 digits

An update writes version N+1 with ``link_no_replace``: the link fails with EEXIST when the name
is taken, atomically even on NFS, so of two concurrent updates from version N exactly one wins
and the other gets ``SettingsConflictError`` (never a silent lost update). After writing, an
event tells every process to move to the new version at once.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import _forksafe
from ._fs import fsync_dir, link_no_replace, unique_name, unlink_quietly, write_file
from .bus import Bus
from .errors import InvalidEventError, SettingsConflictError, UnsupportedStoreError
from .event import Event, validate_name
from .stores import FilesStore, Gap

logger = logging.getLogger(__name__)

SETTINGS_TOPIC = "fsevents.settings"
DEFAULT_ATTEMPTS = 10

ChangeCallback = Callable[[Any, Any], object]
_VERSION_FILE = re.compile(r"(\d{1,18})\.json")


class SharedSettings:
    """The current value of settings document *name*, kept up to date in this process.

    The newest version is read when the object is made (a process that starts late serves
    the current value from its first request), then followed through the Bus. ``value`` is
    shared with the callbacks: treat it as read-only and pass a new value to ``update``.
    """

    def __init__(self, bus: Bus, name: str, *, default: Any = None) -> None:
        store = bus.store
        if not isinstance(store, FilesStore):
            raise UnsupportedStoreError(
                f"shared settings need a directory on the shared volume, but {store!r} is not a "
                "files store; open the Bus on a directory (Bus(root='/mnt/shared/events'))"
            )
        self.bus, self.store = bus, store
        self.name = validate_name(name, "settings name")
        self.directory = store.root / "settings" / self.name
        self.counters: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._callbacks: list[ChangeCallback] = []
        self._version = 0
        self._value: Any = copy.deepcopy(default)
        _forksafe.track(self)
        # Subscribe before reading: a version written in between is then announced to us
        # rather than missed (applying a version twice is harmless, versions only go up).
        bus.subscribe(SETTINGS_TOPIC, self._received)
        bus.on_gap(self._gap)
        self.refresh()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.RLock()  # may have been held by the parent's follower

    def __repr__(self) -> str:
        return f"<SharedSettings {self.name!r} version={self._version}>"

    @property
    def value(self) -> Any:
        return self._value

    @property
    def version(self) -> int:
        """The version this process holds (0: none written yet, the default applies)."""
        return self._version

    def get(self, key: str, default: Any = None) -> Any:
        """``value[key]`` when the document is a dict, else *default*."""
        value = self._value
        return value.get(key, default) if isinstance(value, dict) else default

    def on_change(self, callback: ChangeCallback) -> ChangeCallback:
        """Call *callback(old, new)* in version order after each change; usable as a decorator."""
        with self._lock:
            self._callbacks.append(callback)
        return callback

    # -- writing --------------------------------------------------------------------------

    def update(self, value: Any, *, expected_version: int | None = None) -> int:
        """Write *value* as the next version and tell every process; returns the new version.

        The next version is ``expected_version + 1`` (default: the version this process
        holds). Raises SettingsConflictError when another process wrote it first.
        """
        base = self._version if expected_version is None else expected_version
        if type(base) is not int or base < 0:
            raise ValueError(f"expected_version must be an int >= 0, got {base!r}")
        version = base + 1
        doc = {"v": 1, "name": self.name, "version": version, "time": time.time()}
        doc.update(node=self.bus.node, origin=self.bus.origin, value=value)
        blob = _encode(doc, self.name)
        self._write(version, blob)
        self._apply(version, json.loads(blob)["value"])
        self.counters["updates"] += 1
        # Small documents travel in the event, so readers need no second file (and no wait for
        # a network volume to show it); large ones are read from the version file.
        inline = len(blob) <= self.store.max_event_size // 2
        data = {"name": self.name, "version": version}
        self.bus.publish(SETTINGS_TOPIC, {**data, "value": doc["value"]} if inline else data)
        return version

    def modify(self, change: Callable[[Any], Any], *, attempts: int = DEFAULT_ATTEMPTS) -> int:
        """Apply *change(copy_of_value) -> new_value* to the newest version, retrying conflicts."""
        for attempt in range(attempts):
            self.refresh()
            with self._lock:
                base, current = self._version, copy.deepcopy(self._value)
            try:
                return self.update(change(current), expected_version=base)
            except SettingsConflictError:
                if attempt == attempts - 1:
                    raise
        raise ValueError(f"attempts must be >= 1, got {attempts!r}")

    def _write(self, version: int, blob: bytes) -> None:
        path = self.path(version)
        tmp = self.store.tmp_dir / unique_name(f"settings-{self.name}")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_file(tmp, blob, fsync=self.store.fsync)
            link_no_replace(tmp, path)
        except FileExistsError:
            raise SettingsConflictError(
                f"settings {self.name!r} version {version} was written by another process "
                f"first ({path}); nothing was overwritten: read the newest version and apply "
                "your change again (SharedSettings.modify() does both; on the command line, "
                "omit --expected-version)"
            ) from None
        finally:
            unlink_quietly(tmp)
        if self.store.fsync:
            fsync_dir(self.directory)

    # -- reading --------------------------------------------------------------------------

    def path(self, version: int) -> Path:
        return self.directory / f"{version:012d}.json"

    def newest_version(self) -> int:
        """The newest version on the volume: the newest listed, then probed upward by name.

        A listing made through a network mount can lag by tens of seconds (NFS acdirmax, the
        sshfs directory cache) while an open by name sees a new file at once.
        """
        newest = max(self._version, self._newest_listed())
        while os.path.lexists(self.path(newest + 1)):
            newest += 1
        return newest

    def refresh(self) -> bool:
        """Move to the newest version on the volume; True if the value changed."""
        with self._lock:
            newest = self.newest_version()
            if newest <= self._version:
                return False
            # Newest readable version first; an unreadable one still counts as taken, so the
            # version number moves to *newest* and the next update goes past it.
            for version in range(newest, self._version, -1):
                value = self._read(version)
                if value is not _UNREADABLE:
                    self._apply(newest, value)
                    return True
            self._apply(newest, self._value)
            return False

    def _newest_listed(self) -> int:
        try:
            names = os.listdir(self.directory)
        except (FileNotFoundError, NotADirectoryError):
            return 0
        found = (_VERSION_FILE.fullmatch(n) for n in names)
        return max((int(m.group(1)) for m in found if m), default=0)

    def _read(self, version: int) -> Any:
        path = self.path(version)
        try:
            doc = json.loads(path.read_bytes())
            if doc["name"] != self.name or doc["version"] != version:
                raise ValueError("name or version does not match the file name")
            return doc["value"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # A hand-edited or foreign file must not stop the node: keep the value, take the
            # version (so that the next update goes past it), and say so once.
            self.counters["unreadable"] += 1
            logger.error("skipping settings file %s: %s", path, exc)
            return _UNREADABLE

    def _received(self, event: Event) -> None:
        data = event.data
        if not isinstance(data, dict) or data.get("name") != self.name:
            return
        version = data.get("version")
        if type(version) is not int:
            logger.warning("ignoring settings event %s: no integer version", event.id)
            return
        with self._lock:
            if version <= self._version:
                return  # older than what we hold (events of different writers interleave)
            if "value" in data:
                self._apply(version, data["value"])
                return
        if not self.refresh():
            logger.warning(
                "settings %r version %d announced by %s is not readable yet; will retry on the "
                "next change",
                self.name,
                version,
                event.id,
            )

    def _gap(self, gap: Gap) -> None:
        self.refresh()  # events were lost to retention; the files are the truth

    def _apply(self, version: int, value: Any) -> None:
        with self._lock:
            if version <= self._version:
                return
            old, self._value, self._version = self._value, value, version
            self.counters["changes"] += 1
            callbacks = list(self._callbacks)
            # Under the lock, so that callbacks see changes in version order.
            for callback in callbacks:
                try:
                    callback(old, value)
                except Exception:
                    logger.exception("on_change %r of settings %r failed", callback, self.name)


_UNREADABLE = object()


def _encode(doc: dict[str, Any], name: str) -> bytes:
    try:
        return json.dumps(doc, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(
            f"settings {name!r}: the value is not JSON ({exc}); use dicts, lists, strings, "
            "numbers, booleans and None"
        ) from None
