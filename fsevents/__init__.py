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
    SettingsConflictError,
    UnsupportedStoreError,
)
from .event import Event
from .features import Features
from .settings import SharedSettings
from .signals import Signals, signal_key
from .stores import FilesStore, Gap, SqliteStore, Store, open_store
from .wsgi import FseventsMiddleware, init_flask

__all__ = [
    "Bus",
    "ConsumerBusyError",
    "CorruptEventError",
    "Event",
    "Features",
    "FilesStore",
    "FseventsError",
    "FseventsMiddleware",
    "Gap",
    "InvalidEventError",
    "NodeConflictError",
    "Position",
    "PublishError",
    "RootError",
    "SettingsConflictError",
    "SharedSettings",
    "Signals",
    "SqliteStore",
    "Store",
    "UnsupportedStoreError",
    "__version__",
    "default_root",
    "init_flask",
    "open_store",
    "signal_key",
]
