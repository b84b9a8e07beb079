"""Which file system a path lives on, and whether it is a network one (from mountinfo).

Some storage choices are only safe on a local disk. SQLite's documentation says WAL "does not
work over a network filesystem" (its ``-shm`` index is shared memory that every process must
map) and that POSIX byte-range locks are unreliable over NFS/SMB, so a store needs to know
where its files are. Linux says it in ``/proc/self/mountinfo``; the mount whose point is the
longest prefix of the path's real location is the one that holds it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")

#: File systems whose locks or shared memory are not those of one local kernel.
NETWORK_TYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "afs",
        "ocfs2",
        "gfs2",
        "ncpfs",
        "coda",
        "davfs",
        "fuse",  # FUSE without a subtype: unknown, so assume the worst
    }
)
#: FUSE file systems known to be local (a FUSE type is otherwise assumed remote: sshfs,
#: s3fs, gcsfuse, rclone, glusterfs' client ... all are ``fuse.<name>``).
LOCAL_FUSE_TYPES = frozenset({"fuse.fuse-overlayfs", "fuse.lxcfs", "fuse.squashfuse"})


def unescape_mountinfo(field: str) -> str:
    r"""Undo mountinfo's octal escapes (``\040`` space, ``\011`` tab, ``\012``, ``\134``)."""
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of mountinfo: where, what type, from where, with which options."""

    point: str
    fstype: str
    source: str = ""
    options: dict[str, str] = field(default_factory=dict)

    @property
    def network(self) -> bool:
        """Shared over a network (or unknown, so assumed to be: the cautious answer)."""
        return self.fstype == "unknown" or is_network_type(self.fstype)


def parse_mounts(text: str) -> list[Mount]:
    """Every parseable line of mountinfo text, in order (a later mount hides an earlier one)."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, rest = left.split(" "), right.split(" ")
        if not sep or len(fields) < 5 or not rest[0]:
            continue
        options = _options(fields[5] if len(fields) > 5 else "", rest[2] if len(rest) > 2 else "")
        source = unescape_mountinfo(rest[1]) if len(rest) > 1 else ""
        mounts.append(Mount(unescape_mountinfo(fields[4]), rest[0], source, options))
    return mounts


def parse_mountinfo(text: str) -> dict[str, str]:
    """Mount point -> file-system type; a later mount over the same point wins."""
    return {mount.point: mount.fstype for mount in parse_mounts(text)}


def _options(*groups: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for group in groups:
        for item in group.split(","):
            if item:
                key, _, value = item.partition("=")
                options[key] = value
    return options


def _real_path(path: str | os.PathLike[str]) -> str:
    """*path* with symlinks resolved as far as it exists (it may name a file not made yet)."""
    candidate = Path(os.path.abspath(os.fspath(path)))
    missing: list[str] = []
    while not candidate.exists() and candidate.parent != candidate:
        missing.insert(0, candidate.name)
        candidate = candidate.parent
    return os.path.join(os.path.realpath(candidate), *missing)


def find_mount(path: str | os.PathLike[str], *, mountinfo: str | None = None) -> Mount:
    """The mount holding *path*: the longest mount point that contains its real location.

    *mountinfo* is the text to read (default: this process's ``/proc/self/mountinfo``);
    where it cannot be read (not Linux) the mount is ``Mount("/", "unknown")``.
    """
    if mountinfo is None:
        try:
            mountinfo = MOUNTINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return Mount("/", "unknown")
    real = _real_path(path)
    best = Mount("/", "unknown")
    for mount in parse_mounts(mountinfo):
        point = mount.point
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and (best.fstype == "unknown" or len(point) >= len(best.point)):
            best = mount
    return best


def filesystem_type(path: str | os.PathLike[str], *, mountinfo: str | None = None) -> str:
    """The type (``ext4``, ``nfs4``, ``fuse.sshfs`` ...) of the file system holding *path*.

    Returns ``"unknown"`` where mountinfo cannot be read (not Linux).
    """
    return find_mount(path, mountinfo=mountinfo).fstype


def is_network_type(fstype: str) -> bool:
    if fstype in LOCAL_FUSE_TYPES:
        return False
    return fstype in NETWORK_TYPES or fstype.startswith("fuse.")


def is_network_filesystem(path: str | os.PathLike[str], *, mountinfo: str | None = None) -> bool:
    """True when *path* lives on a network (or unknown FUSE) file system."""
    return is_network_type(filesystem_type(path, mountinfo=mountinfo))
