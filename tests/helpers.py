"""Shared helpers for in-process tests."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fsevents.event import Draft, Event, encode_data
from fsevents.stores.files import FilesStore


class Inbox:
    """A handler that records events and lets a test wait for them with a deadline."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> list[Event]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.events) >= count, timeout):
                raise AssertionError(f"expected {count} events within {timeout}s, got {self.ids}")
            return list(self.events)

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.events]


def write_raw(
    store: FilesStore,
    stream: str,
    seq: int,
    data: Any = None,
    topic: str = "raw.event",
    content: bytes | None = None,
) -> Path:
    """Put an event file in place by hand, as another (maybe broken) node would."""
    path = store.event_path(stream, seq)
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        content = Event.encode(
            Draft(topic, encode_data(data), 1.0, stream, f"{stream}:1:x"), stream, seq
        )
    path.write_bytes(content)
    return path
