"""The follower thread of a Bus: wait, poll, dispatch in order, commit, do the chores.

One daemon thread per started Bus (DESIGN.md, "Follower"). The waker only says "look now";
the reader's poll is the single source of truth, so a missed or duplicated watcher event is
harmless. A failing volume never kills the thread: the Outage backs it off and reports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .cursor import Position
from .event import Event
from .outage import Outage
from .stores import Reader
from .subscriptions import Interrupted
from .waker import Waker


@dataclass(frozen=True, slots=True)
class Chore:
    """Something the follower thread does every *interval* seconds (heartbeat, prune)."""

    interval: float
    run: Callable[[], object]


class Follower:
    """Owns the thread, its reader and its waker; the Bus owns what is delivered and how."""

    def __init__(
        self,
        *,
        name: str,
        reader: Reader,
        waker: Waker,
        deliver: Callable[[Event], None],
        commit: Callable[[Position], None] | None,
        chores: Sequence[Chore],
        outage: Outage,
        batch_size: int,
        stopping: threading.Event,
    ) -> None:
        self.reader, self.waker = reader, waker
        self._deliver, self._commit = deliver, commit
        self._chores = chores
        self._outage = outage
        self._batch_size = batch_size
        self._stopping = stopping
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.errors = 0  # failed rounds (volume trouble), over the thread's life

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        self.waker.wake()
        self._thread.join(timeout)
        self.waker.close()

    def _run(self) -> None:
        due = [0.0] * len(self._chores)
        while not self._stopping.is_set():
            try:
                self._drain()
                for i, chore in enumerate(self._chores):
                    if time.monotonic() >= due[i]:
                        due[i] = time.monotonic() + chore.interval
                        chore.run()
                self._outage.succeeded()
            except Interrupted:
                return
            except Exception as exc:  # the volume failed us: never die, back off and retry
                self.errors += 1
                if self._stopping.wait(self._outage.failed(exc)):
                    return
                continue
            self.waker.wait()
            scan_if_new_directory(self.waker, self.reader)

    def _drain(self) -> None:
        while not self._stopping.is_set():
            events = self.reader.poll(self._batch_size)
            if not events:
                return
            for event in events:
                self._deliver(event)
            # Commit after the whole batch: a crash mid-batch redelivers it (at-least-once).
            if self._commit is not None:
                self._commit(self.reader.position)


def iterate(
    reader: Reader,
    waker: Waker,
    outage: Outage,
    *,
    batch_size: int,
    timeout: float | None = None,
) -> Iterator[Event]:
    """Events as they arrive, in the caller's thread (``Bus.follow``, ``tail``).

    The same wait/poll cycle as the follower thread, without handlers or commits; a failing
    volume is ridden out the same way. With *timeout*, ends after that many seconds.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = waker.poll_interval
        try:
            events = reader.poll(batch_size)
            outage.succeeded()
        except OSError as exc:  # the volume, not a bug: those still raise
            events, wait = [], outage.failed(exc)
        yield from events
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        waker.wait(wait if remaining is None else min(wait, remaining))
        scan_if_new_directory(waker, reader)


def scan_if_new_directory(waker: Waker, reader: Reader) -> None:
    """A new directory (a new node's stream) on this host: list now, not at the next scan."""
    if waker.saw_new_directory:
        waker.saw_new_directory = False
        reader.request_scan()
