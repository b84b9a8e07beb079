"""Stores: where events live. Chosen by passing an instance, or by a target string."""

from __future__ import annotations

import os
from typing import Any

from .base import Gap, Reader, Store
from .files import FilesStore

__all__ = ["FilesStore", "Gap", "Reader", "Store", "open_store"]


def open_store(target: str | os.PathLike[str], **options: Any) -> Store:
    """Open the store a target names: for now every target is a directory (files store)."""
    return FilesStore(target, **options)
