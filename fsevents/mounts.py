"""Which file system a path is on, and what its client caches mean for fsevents (doctor).

Read from ``/proc/self/mountinfo`` (Linux). Elsewhere the mount is "unknown" and treated
as a network volume: the cautious answer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MOUNTINFO = "/proc/self/mountinfo"
_LOCAL = {
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "tmpfs", "overlay", "f2fs", "vfat",
    "exfat", "ntfs3", "jfs", "reiserfs", "ramfs", "bcachefs", "apfs", "hfsplus",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Mount:
    point: str
    fstype: str
    source: str
    options: dict[str, str]

    @property
    def network(self) -> bool:
        """Anything not known to be a local disk counts as shared over a network."""
        return self.fstype not in _LOCAL


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \\ooo octal
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _options(*groups: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for group in groups:
        for item in group.split(","):
            if item:
                key, _, value = item.partition("=")
                options[key] = value
    return options


def find_mount(path: Path, mountinfo: str = MOUNTINFO) -> Mount:
    """The mount holding *path* (the longest mount point that contains it)."""
    real = os.path.realpath(path)
    best: Mount | None = None
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return Mount("/", "unknown", "", {})
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(" "), right.split(" ")
        if len(fields) < 6 or len(rest) < 3:
            continue
        point = _unescape(fields[4])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.point)):
            best = Mount(point, rest[0], _unescape(rest[1]), _options(fields[5], rest[2]))
    return best or Mount("/", "unknown", "", {})


def listing_cache_advice(mount: Mount) -> tuple[str, str, dict[str, Any]]:
    """(status, summary, details) about listing and lookup caches on *mount*."""
    fstype = mount.fstype
    if not mount.network:
        return "ok", "local file system: listings and lookups are always current", {}
    if fstype.startswith("nfs"):
        return _nfs(mount.options)
    if fstype == "fuse.sshfs":
        return (
            "info",
            "sshfs caches directory listings (dcache_timeout, 20 s by default) but not "
            "failed lookups: events of known nodes arrive by name at once, a new node's "
            "stream is discovered within ~20 s + scan_interval (measure: doctor --peer)",
            {"listing_cache": 20.0, "negative_lookups_cached": False},
        )
    if fstype in ("cifs", "smb3"):
        actimeo = float(mount.options.get("actimeo", "1"))
        return (
            "info",
            f"SMB caches attributes and listings for actimeo ({actimeo:g} s)",
            {"listing_cache": actimeo},
        )
    return (
        "info",
        f"{fstype}: unknown client caching; run doctor --peer on two nodes to measure it",
        {},
    )


def _nfs(options: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    # Linux shows ac* and lookupcache in mountinfo only when they differ from the defaults
    # (nfs(5): acdirmin=30, acdirmax=60, lookupcache=all).
    if "noac" in options:
        acdirmax = 0.0
    else:
        actimeo = options.get("actimeo")
        acdirmax = float(actimeo or options.get("acdirmax", "60"))
    lookupcache = options.get("lookupcache", "all")
    negative = lookupcache == "all" and acdirmax > 1
    details: dict[str, Any] = {
        "listing_cache": acdirmax,
        "negative_lookups_cached": negative,
        "lookupcache": lookupcache,
        "advice": [],
    }
    if negative:
        details["advice"].append(
            "mount with lookupcache=positive (or actimeo=1): with failed lookups cached, a "
            "follower's probe for the next event can miss it for up to acdirmax "
            f"({acdirmax:g} s)"
        )
    if acdirmax > 30:
        details["advice"].append(
            f"listings may be {acdirmax:g} s old: a new node's stream is discovered that late; "
            "acdirmax=10 (or actimeo) shortens it"
        )
    status = "warn" if details["advice"] else "ok"
    summary = f"NFS caches listings up to {acdirmax:g} s; failed lookups " + (
        "cached (events can arrive late)" if negative else "not cached"
    )
    return status, summary, details
