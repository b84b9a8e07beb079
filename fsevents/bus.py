"""The Bus: publish events and have them raised in every other process of the farm."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import platformdirs

from . import _forksafe, nodes
from ._version import __version__
from .cursor import DurableCursor, Position, validate_position
from .event import (
    DEFAULT_MAX_EVENT_SIZE,
    Draft,
    Event,
    encode_data,
    topic_matches,
    validate_name,
    validate_pattern,
    validate_topic,
)
from .follower import Chore, Follower, iterate
from .outage import Outage
from .retention import (
    DEFAULT_PRUNE_INTERVAL,
    DEFAULT_RETENTION_AGE,
    DEFAULT_RETENTION_COUNT,
    DEFAULT_TMP_MAX_AGE,
    PruneReport,
    Retention,
    prune_once,
)
from .signing import Keyring, load_keyring, resolve_key_file
from .stores import Gap, Reader, Store, open_store
from .subscriptions import Dispatcher, Handler
from .waker import Waker

logger = logging.getLogger(__name__)

ROOT_ENV = "FSEVENTS_ROOT"
Start = str | Position


def default_root() -> Path:
    """$FSEVENTS_ROOT, else one directory under the user data dir, shared by all local processes."""
    return Path(os.environ.get(ROOT_ENV) or Path(platformdirs.user_data_dir("fsevents")) / "events")


class Bus:
    """Publish events, and receive every other process's events on a follower thread.

    ``Bus(root, node="web1")`` with *root* a directory on the shared volume (default:
    $FSEVENTS_ROOT, else a local directory), or a SQLite file (``*.db``, ``sqlite:`` URL)
    when every process is on one host; or pass ``store=`` (see fsevents.stores). With
    ``consumer="name"`` the position survives restarts and crashes (at-least-once); without,
    the Bus starts at "now".
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        node: str | None = None,
        consumer: str | None = None,
        start: Start = "now",
        store: Store | None = None,
        poll_interval: float = 1.0,
        scan_interval: float = 5.0,
        hole_timeout: float = 30.0,
        watch: bool = True,
        fsync: bool = True,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        receive_own: bool = False,
        state_dir: str | os.PathLike[str] | None = None,
        heartbeat_interval: float = 10.0,
        batch_size: int = 1000,
        handler_retries: int = 3,
        on_gap: Callable[[Gap], object] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        tmp_max_age: float = DEFAULT_TMP_MAX_AGE,
        file_mode: int | None = None,
        dir_mode: int | None = None,
        retention_age: float | None = DEFAULT_RETENTION_AGE,
        retention_count: int | None = DEFAULT_RETENTION_COUNT,
        prune_interval: float = DEFAULT_PRUNE_INTERVAL,
        create: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_positive(
            poll_interval=poll_interval,
            scan_interval=scan_interval,
            heartbeat_interval=heartbeat_interval,
            prune_interval=prune_interval,
            batch_size=batch_size,
            max_event_size=max_event_size,
            tmp_max_age=tmp_max_age,
        )
        if hole_timeout < 0 or handler_retries < 0:
            raise ValueError("hole_timeout and handler_retries must be >= 0")
        self.node = validate_name(node) if node is not None else nodes.default_node_name()
        key_path = resolve_key_file(key_file)
        #: With a key file: events are signed, and only verified events are delivered.
        self.keyring: Keyring | None = load_keyring(key_path) if key_path else None
        if store is not None and root is not None:
            raise ValueError("pass either root or store, not both")
        # Passed only when given, so that stores without file modes (SQLite) accept the call.
        modes = {
            k: v for k, v in (("file_mode", file_mode), ("dir_mode", dir_mode)) if v is not None
        }
        self.store = store or open_store(
            root if root is not None else default_root(),
            state_dir=state_dir,
            fsync=fsync,
            max_event_size=max_event_size,
            create=create,
            **modes,
        )
        self.poll_interval, self.scan_interval = poll_interval, scan_interval
        self.hole_timeout, self.watch = hole_timeout, watch
        self.receive_own, self.batch_size = receive_own, batch_size
        self.heartbeat_interval = heartbeat_interval
        self.tmp_max_age = tmp_max_age
        self.retention = Retention(retention_age, retention_count)
        self.prune_interval = prune_interval
        self._clock = clock
        self._beating = False  # this process has an entry in the node's heartbeat
        self._gap_handlers: list[Callable[[Gap], object]] = [on_gap] if on_gap else []
        self._stopping = threading.Event()
        # start() and stop() may race (a threaded WSGI worker starts the Bus on its first
        # requests, several at once): one follower per Bus, whoever comes first.
        self._lifecycle = threading.RLock()
        self._follower: Follower | None = None
        self._claimed = False
        self._origin_pid = -1
        self._origin = ""
        self.counters: Counter[str] = Counter()
        self._outage = Outage(self.store, base_delay=poll_interval, clock=clock)
        self._cursor: DurableCursor | None = None
        if consumer is not None:
            self._cursor = self.store.local.cursor(validate_name(consumer, "consumer name"))
            self._position = self._cursor.load_or_create(lambda: self._resolve_start(start))
        else:
            self._position = self._resolve_start(start)
        self._dispatcher = Dispatcher(
            retries=handler_retries if consumer else 0,
            wait=lambda seconds: self._stopping.wait(seconds),
            on_failure=self._record_failure if consumer else None,
        )
        _forksafe.track(self)

    def __repr__(self) -> str:
        return f"<Bus node={self.node!r} store={self.store!r}>"

    # -- publishing -----------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """``node:pid:random`` of this process; recomputed after a fork."""
        if self._origin_pid != os.getpid():
            self._origin_pid = os.getpid()
            self._origin = f"{self.node}:{self._origin_pid}:{secrets.token_hex(4)}"
        return self._origin

    def publish(self, topic: str, data: Any = None) -> Event:
        """Write one event; returns it once it is durable on the volume."""
        return self.publish_many([(topic, data)])[0]

    def publish_many(self, items: Iterable[tuple[str, Any]]) -> list[Event]:
        """Write several events in order with one round of fsyncs."""
        now, origin = self._clock(), self.origin
        key = self.keyring.signing_key if self.keyring else None
        drafts = [
            Draft(validate_topic(topic), encode_data(data), now, self.node, origin, key)
            for topic, data in items
        ]
        if not self._claimed:
            nodes.claim(self.store, self.node, clock=self._clock)
            self._heartbeat()
            self._claimed = True
        events = self.store.append(self.node, drafts)
        self.counters["published"] += len(events)
        return events

    # -- receiving ------------------------------------------------------------------------

    def subscribe(self, pattern: str, handler: Handler | None = None) -> Any:
        """Call *handler(event)* for events whose topic matches the glob *pattern*.

        Without *handler*, returns a decorator: ``@bus.subscribe("cache.*")``.
        """
        validate_pattern(pattern)
        if handler is None:

            def decorator(fn: Handler) -> Handler:
                self._dispatcher.add(pattern, fn)
                return fn

            return decorator
        self._dispatcher.add(pattern, handler)
        return handler

    def unsubscribe(self, handler: Handler) -> None:
        self._dispatcher.remove(handler)

    def on_gap(self, handler: Callable[[Gap], object]) -> Callable[[Gap], object]:
        """Call *handler(gap)* when retention removed events before this Bus read them."""
        self._gap_handlers.append(handler)
        return handler

    @property
    def position(self) -> Position:
        return self._follower.reader.position if self._follower else dict(self._position)

    @property
    def running(self) -> bool:
        """Whether the follower thread is running (between start() and stop())."""
        return self._follower is not None and self._follower.alive

    def stats(self) -> dict[str, int]:
        reader = self._follower.reader.counters if self._follower else Counter()
        if self._follower is not None and self._follower.errors:
            reader = reader + Counter(follower_errors=self._follower.errors)
        outages = Counter(outages=self._outage.count)
        return dict(self.counters + self._dispatcher.counters + reader + outages)

    def health(self) -> dict[str, Any]:
        """Is the follower running and reaching the volume? For status pages and probes.

        ``outage_since`` (unix time) and ``last_error`` are set while the follower cannot
        read the store (volume unmounted, EIO, ...); it keeps retrying with backoff and
        delivers everything published meanwhile once the volume is back.
        """
        ok = self.running and not self._outage.failures
        return {"running": self.running, "ok": ok, **self._outage.status()}

    def follow(
        self, topic: str = "*", *, start: Start = "now", timeout: float | None = None
    ) -> Iterator[Event]:
        """Iterate over events matching *topic* as they arrive (what ``tail`` uses).

        Independent of the follower thread and of durable cursors. With *timeout*, the
        iteration ends after that many seconds in total. Rides out a failing volume like
        the follower thread: one error line, backoff, then it resumes where it stopped.
        """
        validate_pattern(topic)
        reader = self._make_reader(self._resolve_start(start))
        self.counters["temps_swept"] += self.store.sweep(self.tmp_max_age)
        outage = Outage(self.store, base_delay=self.poll_interval, clock=self._clock)
        with self._new_waker() as waker:
            for event in iterate(reader, waker, outage, batch_size=self.batch_size,
                                 timeout=timeout):  # fmt: skip
                if self._deliverable(event) and topic_matches(topic, event.topic):
                    yield event

    # -- the follower thread --------------------------------------------------------------

    def start(self) -> Bus:
        """Start the follower thread (idempotent). Handlers run on it, in order.

        In a process forked from one where this Bus ran, this starts a new follower at the
        parent's position: nothing started before a fork is reused after it.
        """
        with self._lifecycle:
            if self._follower is None:
                self._start_follower()
        return self

    def _start_follower(self) -> None:
        nodes.claim(self.store, self.node, clock=self._clock)
        if self._cursor is not None:
            self._cursor.acquire()
            self._position = self._cursor.load() or self._position
        self._stopping.clear()
        self._follower = Follower(
            name=f"fsevents-{self.node}",
            reader=self._make_reader(self._position),
            waker=self._new_waker(),
            deliver=self._deliver,
            commit=self._cursor.save if self._cursor else None,
            chores=[
                Chore(self.heartbeat_interval, self._heartbeat),
                Chore(self.prune_interval, self._prune_in_background),
            ],
            outage=self._outage,
            batch_size=self.batch_size,
            stopping=self._stopping,
        )
        self._follower.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the follower thread and release what it holds. Safe to call twice."""
        with self._lifecycle:
            if self._follower is not None:
                self._stop_follower(timeout)

    def _stop_follower(self, timeout: float) -> None:
        assert self._follower is not None
        self._follower.stop(timeout)
        self._position = self.position
        self._follower = None
        if self._cursor is not None:
            self._heartbeat()  # the consumer's last position, for status while it is down
            self._cursor.release()
        elif self._beating:
            self._heartbeat(leaving=True)

    def close(self) -> None:
        self.stop()
        if self._beating and self._cursor is None:
            self._heartbeat(leaving=True)
        self.store.close()

    def __enter__(self) -> Bus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wake(self) -> None:
        """Look for new events now instead of at the next poll."""
        if self._follower is not None:
            self._follower.waker.wake()

    def _after_fork_in_child(self) -> None:
        """In a forked child: the follower and watcher threads were not copied; drop them.

        fork() copies only the calling thread, so the child holds Thread and observer objects
        whose threads do not exist, and locks that one of them may have held at the instant
        of the fork. Keep the position (the child resumes where the parent was, so it misses
        nothing) and let the next ``start()`` build everything anew in this process.
        """
        self._stopping = threading.Event()
        self._lifecycle = threading.RLock()
        self._dispatcher.after_fork()
        if self._follower is None:
            return
        self._position = self.position
        self._follower = None
        if self._cursor is not None:
            # The parent still holds this consumer: a fresh lock object makes start() in the
            # child fail with ConsumerBusyError instead of sharing the inherited lock.
            self._cursor = self.store.local.cursor(self._cursor.consumer)

    # -- helpers --------------------------------------------------------------------------

    def _new_waker(self) -> Waker:
        return Waker(
            self.store.watch_paths(),
            poll_interval=self.poll_interval,
            watch=self.watch,
            events=self.store.watch_events,
            names=self.store.watch_names(),
        )

    def _deliver(self, event: Event) -> None:
        if self._deliverable(event):
            self._dispatcher.dispatch(event)

    def _deliverable(self, event: Event) -> bool:
        """Not our own (unless asked for), and signed with a key we hold (if we hold keys).

        Checked here, before any handler, so that every store gets the same check.
        """
        if not self.receive_own and event.origin == self.origin:
            return False
        if self.keyring is not None:
            why = self.keyring.rejection(event)
            if why is not None:
                logger.warning("rejecting event %s (topic %r): %s", event.id, event.topic, why)
                self.counters["rejected_unverified"] += 1
                return False
        return True

    def _make_reader(self, position: Position) -> Reader:
        return self.store.reader(
            position,
            hole_timeout=self.hole_timeout,
            scan_interval=self.scan_interval,
            on_gap=self._gap,
        )

    def _gap(self, gap: Gap) -> None:
        for handler in self._gap_handlers:
            try:
                handler(gap)
            except Exception:
                logger.exception("gap handler %r failed", handler)

    def _resolve_start(self, start: Start) -> Position:
        if start == "now":
            return self.store.head()
        if start == "beginning":
            return self.store.beginning()
        if isinstance(start, dict):
            return validate_position(start)
        raise ValueError(f"start must be 'now', 'beginning' or a position dict, got {start!r}")

    def _record_failure(self, event: Event, exc: BaseException) -> None:
        assert self._cursor is not None
        self.counters["failed_events"] += 1
        self._cursor.record_failure(event.to_dict(), repr(exc))

    def prune(self, *, wait: bool = True) -> PruneReport | None:
        """Apply the retention to this node's stream and remove gone nodes' streams.

        The follower thread calls this every *prune_interval*. One process of a machine
        prunes at a time: with ``wait=False`` this returns None if a sibling is pruning.
        """
        report = prune_once(
            self.store,
            self.node,
            self.retention,
            tmp_max_age=self.tmp_max_age,
            now=self._clock(),
            wait=wait,
        )
        if report is None:
            return None
        self.counters["pruned"] += sum(report.removed.values())
        self.counters["streams_removed"] += len(report.removed_streams)
        self.counters["temps_swept"] += report.removed_tmp
        return report

    def _prune_in_background(self) -> None:
        # Retention is housekeeping: a failure must not slow delivery down (the follower's
        # back-off is for failures to read); say so once per attempt and try next time.
        try:
            self.prune(wait=False)
        except OSError as exc:
            self.counters["prune_errors"] += 1
            logger.warning("cannot prune the stream of node %r: %s", self.node, exc)

    def _heartbeat(self, *, leaving: bool = False) -> None:
        consumer = self._cursor.consumer if self._cursor else None
        # Durable consumers keep one entry across restarts; other Buses one per instance.
        key = f"consumer:{consumer}" if consumer else f"bus:{self.origin}"
        entry = None
        if not leaving:
            role = "consumer" if consumer else "follower" if self._follower else "publisher"
            entry = nodes.process_entry(
                role=role,
                consumer=consumer,
                position=self.position,
                counters=self.stats(),
                version=__version__,
                now=self._clock(),
            )
        try:
            nodes.heartbeat(
                self.store,
                self.node,
                key=key,
                entry=entry,
                version=__version__,
                clock=self._clock,
                stale_after=max(3 * self.heartbeat_interval, 30.0),
            )
            self._beating = not leaving
        except OSError as exc:
            logger.warning("cannot write the heartbeat of node %r: %s", self.node, exc)


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
