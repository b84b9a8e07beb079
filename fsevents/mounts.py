"""What a mount's client caches mean for fsevents (doctor's advice per file-system type).

Which mount holds a path, and its type and options, come from fstype.find_mount.
"""

from __future__ import annotations

from typing import Any

from .fstype import Mount


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
