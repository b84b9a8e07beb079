"""Replicated cache invalidation: trigger a key here, and every other process evicts it.

This is what the original module's CacheManager signals were for: a web farm where each worker
keeps its own in-memory cache, and a change in one worker must evict the stale entry in all of
them. ``trigger(key)`` runs this process's callbacks at once and publishes one event; the
follower of every other process (other workers of the same node included) runs theirs.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

from . import _forksafe
from .bus import Bus
from .errors import InvalidEventError
from .event import Event
from .stores import Gap

logger = logging.getLogger(__name__)

SIGNAL_TOPIC = "fsevents.signal"

KeyCallback = Callable[[str], object]
C = TypeVar("C")


def signal_key(key: object) -> str:
    """The string every node uses for *key*: a str as is, anything else as canonical JSON.

    Same content gives the same string on every node and every Python run (``hash()`` and
    ``repr()`` of arbitrary objects do not: hash randomisation, memory addresses). Tuples and
    lists are the same JSON array, sets are sorted, and classes (cachetools' ``typedkey``)
    become their qualified name.
    """
    if isinstance(key, str):
        return key
    try:
        return json.dumps(
            _plain(key), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(
            f"cache key {key!r} cannot be turned into a stable string ({exc}); use a str, or "
            "numbers, strings, tuples, lists, dicts and sets of them"
        ) from None


def _plain(value: object) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(signal_key(v) for v in value)
    if isinstance(value, dict):
        return {signal_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    raise TypeError(f"{type(value).__name__} has no stable form")


def _same_key(candidate: object, key: str) -> bool:
    try:
        return not isinstance(candidate, str) and signal_key(candidate) == key
    except InvalidEventError:
        return False


@dataclass(frozen=True, slots=True)
class _Attached:
    """How to evict one key from an attached cache, and how to empty it."""

    cache: object
    evict: Callable[[str, bool], None]
    clear: Callable[[], None]


def _adapt(cache: Any, lock: AbstractContextManager[Any]) -> _Attached:
    def locked(fn: Callable[..., object]) -> Callable[..., None]:
        def run(*args: Any) -> None:
            with lock:
                fn(*args)

        return run

    if callable(getattr(cache, "cache_clear", None)):
        # functools.lru_cache (and cachetools' @cached) functions: no per-key eviction.
        clear_all = locked(cache.cache_clear)
        return _Attached(cache, lambda key, structured: clear_all(), clear_all)
    if isinstance(cache, MutableMapping):  # dict, cachetools caches

        def evict_mapping(key: str, structured: bool) -> None:
            cache.pop(key, None)
            if structured:  # the cache holds the original object (a tuple...), not our string
                for candidate in [k for k in list(cache) if _same_key(k, key)]:
                    cache.pop(candidate, None)

        return _Attached(cache, locked(evict_mapping), locked(cache.clear))
    clear = getattr(cache, "clear", None)
    if callable(getattr(cache, "delete", None)):  # Flask-Caching, Django caches
        return _Attached(
            cache, locked(lambda key, structured: cache.delete(key)), locked(clear or _noop)
        )
    if callable(getattr(cache, "pop", None)):
        return _Attached(
            cache, locked(lambda key, structured: cache.pop(key, None)), locked(clear or _noop)
        )
    if callable(clear):
        return _Attached(cache, locked(lambda key, structured: clear()), locked(clear))
    raise TypeError(
        f"cannot attach {cache!r}: expected a dict or other mutable mapping, an lru_cache "
        "function, or an object with delete(key), pop(key, default) or clear()"
    )


def _noop() -> None:
    pass


class Signals:
    """Named signals on a Bus; attached caches lose a key when its signal is triggered anywhere.

    ``signals = Signals(bus)``, then ``signals.attach(cache)`` and ``signals.trigger(key)``.
    A process that fell behind retention (a gap) cannot know which keys it missed, so it
    clears every attached cache and calls the ``on_reset`` callbacks.
    """

    def __init__(self, bus: Bus, *, topic: str = SIGNAL_TOPIC) -> None:
        self.bus = bus
        self.topic = topic
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._attached: list[_Attached] = []
        self._by_key: dict[str, list[KeyCallback]] = {}
        self._any: list[KeyCallback] = []
        self._reset: list[Callable[[], object]] = []
        bus.subscribe(topic, self._received)
        bus.on_gap(self._gap)
        _forksafe.track(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # may have been held by the parent's follower

    def attach(self, cache: C, *, lock: AbstractContextManager[Any] | None = None) -> C:
        """Evict keys from *cache* when they are triggered; returns *cache*.

        Pass *lock* when the cache is shared with other threads and is not thread-safe
        (cachetools caches are not): eviction runs on the Bus's follower thread.
        """
        adapter = _adapt(cache, lock if lock is not None else nullcontext())
        with self._lock:
            self._attached.append(adapter)
        return cache

    def detach(self, cache: object) -> None:
        with self._lock:
            self._attached = [a for a in self._attached if a.cache is not cache]

    def on(self, key: object, callback: KeyCallback | None = None) -> Any:
        """Call *callback(key_string)* when *key* is triggered; a decorator without *callback*."""
        name = signal_key(key)

        def register(fn: KeyCallback) -> KeyCallback:
            with self._lock:
                self._by_key.setdefault(name, []).append(fn)
            return fn

        return register if callback is None else register(callback)

    def on_any(self, callback: KeyCallback) -> KeyCallback:
        """Call *callback(key_string)* for every triggered key."""
        with self._lock:
            self._any.append(callback)
        return callback

    def on_reset(self, callback: Callable[[], object]) -> Callable[[], object]:
        """Call *callback()* after a gap made this process clear its attached caches."""
        with self._lock:
            self._reset.append(callback)
        return callback

    def trigger(self, key: object) -> Event:
        """Evict *key* here at once, then in every other process; returns the event."""
        name = signal_key(key)
        structured = not isinstance(key, str)
        self._run(name, structured)
        self.counters["triggered"] += 1
        return self.bus.publish(self.topic, {"key": name, "structured": structured})

    def _received(self, event: Event) -> None:
        data = event.data
        if not (isinstance(data, dict) and isinstance(data.get("key"), str)):
            self.counters["malformed"] += 1
            logger.warning("ignoring signal event %s: data is not {'key': str}", event.id)
            return
        self.counters["received"] += 1
        self._run(data["key"], bool(data.get("structured")))

    def _run(self, key: str, structured: bool) -> None:
        with self._lock:
            attached = list(self._attached)
            callbacks = [*self._by_key.get(key, ()), *self._any]
        for adapter in attached:
            self._guarded(adapter.evict, key, structured, what=f"evicting {key!r}")
        for callback in callbacks:
            self._guarded(callback, key, what=f"signal {key!r}")

    def _gap(self, gap: Gap) -> None:
        logger.warning("%s; clearing every attached cache", gap)
        self.counters["resets"] += 1
        with self._lock:
            attached, callbacks = list(self._attached), list(self._reset)
        for adapter in attached:
            self._guarded(adapter.clear, what="clearing a cache after a gap")
        for callback in callbacks:
            self._guarded(callback, what="reset callback")

    def _guarded(self, fn: Callable[..., object], *args: Any, what: str) -> None:
        # One broken cache or callback must not keep the others stale.
        try:
            fn(*args)
        except Exception:
            self.counters["callback_errors"] += 1
            logger.exception("%s failed (%r)", what, fn)
