"""Stores: where events live. Chosen by passing an instance, or by a target string."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .base import Gap, Reader, Store
from .files import FilesStore
from .sqlite import POSITION_KEY as SQLITE_POSITION_KEY
from .sqlite import SqliteStore
from .sqlite_db import SCHEME as SQLITE_SCHEME
from .sqlite_db import SUFFIXES as SQLITE_SUFFIXES

__all__ = [
    "SQLITE_POSITION_KEY",
    "FilesStore",
    "Gap",
    "Reader",
    "SqliteStore",
    "Store",
    "open_store",
    "store_class",
]

StoreFactory = Callable[..., Store]

#: How a target string names its store: a URL scheme, else the file name's suffix, else a
#: directory (files store). A new store adds its scheme or suffix here.
BY_SCHEME: dict[str, StoreFactory] = {SQLITE_SCHEME: SqliteStore}
BY_SUFFIX: dict[str, StoreFactory] = dict.fromkeys(SQLITE_SUFFIXES, SqliteStore)
DEFAULT: StoreFactory = FilesStore


def store_class(target: str | os.PathLike[str]) -> StoreFactory:
    """The Store class a target names (see BY_SCHEME, BY_SUFFIX; default FilesStore)."""
    text = os.fspath(target)
    for scheme, cls in BY_SCHEME.items():
        if text.startswith(scheme):
            return cls
    return BY_SUFFIX.get(os.path.splitext(text)[1].lower(), DEFAULT)


def open_store(target: str | os.PathLike[str], **options: Any) -> Store:
    """Open the store *target* names, passing it *options* (state_dir, fsync, ...)."""
    return store_class(target)(target, **options)
