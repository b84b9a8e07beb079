"""Small file-system primitives that behave on local disks and network volumes alike."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
import stat
from pathlib import Path

logger = logging.getLogger(__name__)

# Errors meaning "this file system cannot make hard links" (some SMB servers, FAT, ...).
_NO_LINK_ERRNOS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.ENOSYS}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


#: What unique_name() makes: <prefix>.<pid>.<12 hex>.tmp (what a temp sweep may remove).
TEMP_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}\.\d{1,10}\.[0-9a-f]{12}\.tmp")


def unique_name(prefix: str) -> str:
    return f"{prefix}.{os.getpid()}.{secrets.token_hex(6)}.tmp"


def process_umask() -> int | None:
    """This process's umask, read without changing it (os.umask() sets it: not thread-safe).

    Linux >= 4.7 shows it in /proc/self/status; elsewhere None (callers then chmod always).
    """
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def make_dirs(path: Path, mode: int) -> None:
    """Create *path* and its missing parents with exactly *mode*.

    mkdir() applies the umask and ignores the setgid bit, hence the chmod. Directories that
    already exist are left alone: they may belong to another user of the group.
    """
    if path.is_dir():
        return
    if path.parent != path:
        make_dirs(path.parent, mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return  # another process made it first: theirs stands
    os.chmod(path, mode)


def write_file(
    path: Path,
    data: bytes,
    *,
    fsync: bool,
    exclusive: bool = True,
    mode: int = 0o664,
    exact_mode: bool = False,
) -> None:
    """Write *data* to a new file (O_EXCL: never an existing one unless told).

    The file gets *mode* narrowed by the umask; with *exact_mode*, exactly *mode* (an fchmod:
    one more round trip on a network volume, so callers ask only when the umask narrows it).
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        if exact_mode:
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_small(path: Path, limit: int = 64 * 1024) -> bytes:
    """Read a small control file from the share (marker, heartbeat) without trusting it.

    No symlinks, no FIFOs (O_NONBLOCK), at most *limit* bytes: anyone who can write to the
    share could put a huge file there. Raises ValueError when it is not a small regular file.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path} is not a regular file")
        raw = b""
        while len(raw) <= limit and (chunk := os.read(fd, limit + 1 - len(raw))):
            raw += chunk
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    return raw


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
    path: Path,
    data: bytes,
    *,
    fsync: bool = True,
    tmp_dir: Path | None = None,
    mode: int = 0o664,
    exact_mode: bool = False,
) -> None:
    """Replace *path* with *data* so that readers see the old or the new content, never a mix."""
    tmp = (tmp_dir or path.parent) / unique_name(path.name)
    try:
        write_file(tmp, data, fsync=fsync, mode=mode, exact_mode=exact_mode)
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


def sweep_temps(directory: Path, max_age: float, *, now: float) -> int:
    """Remove temps (unique_name) older than *max_age* seconds by *now*; return how many.

    Temps are files of publishers that died before linking, and directories of segments a
    pruner renamed here and died before deleting. Pass the volume's clock as *now*
    (``volume_clock``): mtimes come from the file server, so ages are then right whatever
    this node's clock says. Several nodes may sweep at once; a lost race is harmless.
    """
    removed = 0
    try:
        names = os.listdir(directory)
    except OSError as exc:
        logger.debug("cannot list %s for stale temp files: %s", directory, exc)
        return 0
    for name in names:
        if not TEMP_NAME.fullmatch(name):
            continue
        path = directory / name
        try:
            info = os.lstat(path)
            if now - info.st_mtime <= max_age:
                continue
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed += 1
        except OSError:
            continue  # gone already (another node swept it), or not ours to remove
    if removed:
        logger.info(
            "removed %d stale temp files (older than %.0fs) from %s", removed, max_age, directory
        )
    return removed


def check_modes(file_mode: int, dir_mode: int) -> tuple[int, int]:
    if not 0 <= file_mode <= 0o7777 or file_mode & 0o600 != 0o600:
        raise ValueError(f"file_mode {file_mode:#o} must be a mode that lets the owner read/write")
    if not 0 <= dir_mode <= 0o7777 or dir_mode & 0o700 != 0o700:
        raise ValueError(f"dir_mode {dir_mode:#o} must be a mode that gives the owner rwx")
    return file_mode, dir_mode


def volume_advice(code: int | None) -> str:
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "the volume (or this user's quota) is full: free space, e.g. prune old events"
    if code == errno.EROFS:
        return "the volume is mounted read-only: remount it read-write"
    if code in (errno.EACCES, errno.EPERM):
        return (
            "permission denied: every node's user needs write access to the root's "
            "directories (same group; see file_mode/dir_mode)"
        )
    return "check that the volume is mounted, writable and has space"


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


def visible(path: str | os.PathLike[str]) -> bool:
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
