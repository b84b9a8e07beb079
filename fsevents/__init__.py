"""fsevents: broadcast events between the processes of a server farm through a shared volume."""

from __future__ import annotations

from ._version import __version__
from .bus import Bus, default_root
from .cursor import Position
from .errors import (
    ConsumerBusyError,
    CorruptEventError,
    FseventsError,
    InvalidEventError,
    NodeConflictError,
    PublishError,
    RootError,
)
from .event import Event
from .stores import FilesStore, Gap, SqliteStore, Store, open_store

__all__ = [
    "Bus",
    "ConsumerBusyError",
    "CorruptEventError",
    "Event",
    "FilesStore",
    "FseventsError",
    "Gap",
    "InvalidEventError",
    "NodeConflictError",
    "Position",
    "PublishError",
    "RootError",
    "SqliteStore",
    "Store",
    "__version__",
    "default_root",
    "open_store",
]
