"""Small file-system primitives that behave on local disks and network volumes alike."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

# Errors meaning "this file system cannot make hard links" (some SMB servers, FAT, ...).
_NO_LINK_ERRNOS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.ENOSYS}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def unique_name(prefix: str) -> str:
    return f"{prefix}.{os.getpid()}.{secrets.token_hex(6)}.tmp"


def write_file(path: Path, data: bytes, *, fsync: bool, exclusive: bool = True) -> None:
    """Write *data* to a new file (O_EXCL: never an existing one unless told)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o664)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a directory's new entries durable where the OS allows it.

    Linux wants an fsync of the directory after link/rename for the entry itself to survive a
    power cut; some file systems (and FUSE servers) refuse to open or fsync a directory, which is
    harmless there because they have no such cache to flush.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_atomic(
    path: Path, data: bytes, *, fsync: bool = True, tmp_dir: Path | None = None
) -> None:
    """Replace *path* with *data* so that readers see the old or the new content, never a mix."""
    tmp = (tmp_dir or path.parent) / unique_name(path.name)
    try:
        write_file(tmp, data, fsync=fsync)
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise


def link_no_replace(src: Path, dst: Path, *, allow_rename: bool = True) -> bool:
    """Give *src* the name *dst* without ever replacing an existing *dst*.

    ``os.link`` fails with EEXIST when *dst* exists, atomically, even on NFS; that is what makes
    a name a claim. Returns False where hard links are unsupported and the caller forbade the
    rename fallback. Raises FileExistsError when *dst* exists.
    """
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in _NO_LINK_ERRNOS or not allow_rename:
            if exc.errno in _NO_LINK_ERRNOS:
                return False
            raise
        # No hard links here: rename after an existence check. The window between the two is
        # only a risk when two machines claim one node name, which the heartbeat detects.
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "file exists", str(dst)) from None
        os.rename(src, dst)
        return True
    unlink_quietly(src)
    return True


def unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def volume_clock(tmp_dir: Path) -> float:
    """The volume's "now": the mtime the file server gives a file created this instant.

    Comparing another node's file times with this (not with our own clock) keeps age
    decisions right when the nodes' clocks disagree: every mtime on the share comes from the
    same server clock (NFS and SFTP servers stamp writes themselves).
    """
    path = tmp_dir / unique_name("clock")
    write_file(path, b"", fsync=False)
    try:
        return path.stat().st_mtime
    finally:
        unlink_quietly(path)


def visible(path: Path) -> bool:
    """Does *path* exist, asking the server rather than the client's attribute cache?

    On sshfs, ``stat`` of a file that another client removed keeps succeeding for ~20 s (the
    attribute cache; measured in tests/test_netvol.py), while ``open`` fails at once; NFS
    revalidates on open too (close-to-open consistency). So existence is tested by opening.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return True  # a symbolic link is there (never followed)
        if exc.errno in (errno.ENOENT, errno.ESTALE, errno.ENOTDIR):
            return False
        raise
    os.close(fd)
    return True
