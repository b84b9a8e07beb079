"""Resetting objects in a forked child: fork() copies only the calling thread.

Threads the parent ran (a Bus follower, a watchdog observer) do not exist in the child, and a
lock one of them held at the instant of the fork stays locked there forever. gunicorn with
``--preload`` (and uWSGI, multiprocessing's "fork") fork from a process that may have run them.
Objects that own threads or locks register here; after a fork, the child calls their
``_after_fork_in_child()``.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


_tracked: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def track(obj: ForkAware) -> None:
    _tracked.add(obj)


def _reset_in_child() -> None:
    for obj in list(_tracked):
        obj._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_in_child)
