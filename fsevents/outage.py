"""A follower's outages: backoff, one log line when the volume fails, one when it is back.

A follower must never die because its volume did (unmounted, full of EIO, ESTALE after a
server restart): it retries with exponential backoff, and reports the outage meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("fsevents.bus")


class Outage:
    """Consecutive failures of one follower. Used by the follower thread only."""

    def __init__(
        self,
        what: object,
        *,
        base_delay: float,
        max_delay: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._what = what
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._clock = clock
        self.failures = 0
        self.count = 0
        self.since: float | None = None
        self.last_error: str | None = None

    def failed(self, exc: BaseException) -> float:
        """Record a failure; return how many seconds to wait before retrying."""
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        delay = min(self._base_delay * 2.0 ** min(self.failures, 6), self._max_delay)
        if self.failures == 1:
            self.since = self._clock()
            self.count += 1
        log = logger.error if self.failures == 1 else logger.debug
        log("follower of %s failed (%s); retrying in %.1fs", self._what, exc, delay)
        return delay

    def succeeded(self) -> None:
        """The follower worked again: end the outage, if there was one, with one log line."""
        if not self.failures:
            return
        logger.warning(
            "follower of %s recovered after %.1fs (%d failed attempts); resuming where it stopped",
            self._what,
            self._clock() - (self.since or self._clock()),
            self.failures,
        )
        self.failures = 0
        self.since = None

    def status(self) -> dict[str, Any]:
        return {"outage_since": self.since, "last_error": self.last_error, "outages": self.count}
