"""Subscriptions and in-order dispatch of events to handlers."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from .event import Event, topic_matches, validate_pattern

logger = logging.getLogger(__name__)

Handler = Callable[[Event], object]
FailureRecorder = Callable[[Event, BaseException], None]


class Interrupted(Exception):
    """Dispatch stopped mid-batch because the Bus is stopping."""


@dataclass(frozen=True, slots=True)
class Subscription:
    pattern: str
    handler: Handler


class Dispatcher:
    """Calls the handlers whose pattern matches, in subscription order.

    A handler that raises is logged and never stops the follower. With *retries* (durable
    consumers), it is retried with exponential backoff first, then reported to *on_failure*
    so that the failure is recorded and the consumer moves on.
    """

    def __init__(
        self,
        *,
        retries: int = 0,
        backoff: float = 0.1,
        wait: Callable[[float], bool] | None = None,
        on_failure: FailureRecorder | None = None,
    ) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._retries = retries
        self._backoff = backoff
        self._wait = wait or threading.Event().wait
        self._on_failure = on_failure
        self.counters: Counter[str] = Counter()

    def add(self, pattern: str, handler: Handler) -> None:
        validate_pattern(pattern)
        if not callable(handler):
            raise TypeError(f"handler for {pattern!r} must be callable, got {handler!r}")
        with self._lock:
            self._subs.append(Subscription(pattern, handler))

    def after_fork(self) -> None:
        """In a forked child: the lock may have been held by a thread that no longer exists."""
        self._lock = threading.Lock()

    def remove(self, handler: Handler) -> None:
        with self._lock:
            self._subs = [s for s in self._subs if s.handler != handler]

    def dispatch(self, event: Event) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if topic_matches(sub.pattern, event.topic):
                self._call(sub.handler, event)
        self.counters["delivered"] += 1

    def _call(self, handler: Handler, event: Event) -> None:
        delay = self._backoff
        for attempt in range(self._retries + 1):
            try:
                handler(event)
                return
            except Exception as exc:
                self.counters["handler_errors"] += 1
                final = attempt == self._retries
                logger.error(
                    "handler %s failed on event %s (topic %r)%s",
                    getattr(handler, "__qualname__", handler),
                    event.id,
                    event.topic,
                    "" if final else f"; retrying in {delay:.2f}s",
                    exc_info=True,
                )
                if final:
                    if self._on_failure is not None:
                        self._on_failure(event, exc)
                    return
                if self._wait(delay):
                    # Stopping: leave the batch uncommitted so that it is redelivered.
                    raise Interrupted from exc
                delay *= 2
