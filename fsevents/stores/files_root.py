"""The root of a files store: its directories and its format marker, ``fsevents.json``.

The marker is written once, without replacing (the first node to create the root wins and
every other node reads theirs), and read on every open. It carries the format version, the
store's random id (what keys each machine's local state for it) and the segment size every
node must agree on. A follower checks it on every scan: a network volume unmounted under a
running node leaves an empty local mount point, which would otherwise look like "no new
events", and a listing like "everything was pruned".
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .._fs import link_no_replace, make_dirs, read_small, unique_name
from ..errors import RootError, VolumeUnavailableError
from .base import NOT_A_ROOT

FORMAT = 1
MARKER = "fsevents.json"


def open_root(
    root: Path,
    directories: Iterable[Path],
    *,
    dir_mode: int,
    tmp_dir: Path,
    write: Callable[[Path, bytes], None],
    segment_size: int,
    create: bool = True,
) -> dict[str, Any]:
    """Create what is missing under *root*, then read its marker (writing it if new).

    With *create* False a root without a marker is an error, not a new root: a node that
    starts before its network volume is mounted must not fill the bare mount point.
    """
    if root.exists() and not root.is_dir():
        raise RootError(f"{root} is not a directory; point --root at a directory")
    if not create and read_marker(root / MARKER) is None:
        raise RootError(f"{root} {NOT_A_ROOT}")
    try:
        for path in directories:
            make_dirs(path, dir_mode)
    except OSError as exc:
        raise RootError(
            f"cannot create {exc.filename or root}: {exc.strerror}; check that the "
            "shared volume is mounted and writable, or choose another --root"
        ) from exc
    marker = root / MARKER
    meta = read_marker(marker)
    if meta is None:
        meta = {
            "format": FORMAT,
            "created": time.time(),
            "id": secrets.token_hex(8),
            "segment_size": segment_size,
        }
        tmp = tmp_dir / unique_name(MARKER)
        try:
            write(tmp, json.dumps(meta).encode())
            link_no_replace(tmp, marker)
        except FileExistsError:
            os.unlink(tmp)  # another node created the root at the same moment: use theirs
            meta = read_marker(marker)
        except OSError as exc:
            raise RootError(
                f"cannot write {marker}: {exc.strerror}; the directory must be writable "
                "by this user to create a new fsevents root"
            ) from exc
    assert meta is not None
    return meta


def read_marker(marker: Path) -> dict[str, Any] | None:
    """The marker's document, None if there is none, RootError if it is not ours."""
    try:
        meta = json.loads(read_small(marker))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:
        raise RootError(f"cannot read {marker}: {exc}; is this an fsevents root?") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise RootError(
            f"{marker} declares format {found!r}, this fsevents reads format {FORMAT}; "
            "upgrade fsevents on this node or use another --root"
        )
    if not isinstance(meta.get("id"), str) or not isinstance(meta.get("segment_size"), int):
        raise RootError(f"{marker} lacks 'id' or 'segment_size'; it was not written by fsevents")
    return meta


def check_marker(root: Path, identity: str) -> None:
    """Raise VolumeUnavailableError unless *root* still holds the store *identity*."""
    marker = root / MARKER
    try:
        meta = read_marker(marker)
    except RootError as exc:
        meta, why = None, str(exc)
    else:
        why = f"{marker} is missing" if meta is None else f"{marker} belongs to another root"
    if meta is None or meta.get("id") != identity:
        raise VolumeUnavailableError(
            errno.ENOENT,
            f"{why}: the volume holding {root} is unmounted or failing; remount it "
            "(followers wait and resume where they stopped)",
        )
