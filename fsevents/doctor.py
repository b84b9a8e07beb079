"""``fsevents doctor``: probe a target volume and say which stores are safe on it, and why.

Each check returns a ``Check`` with a status: ``ok``, ``warn`` (works, with a cost worth
knowing), ``fail`` (the files store is not safe here) or ``info``. Probe files live under
``<root>/doctor/`` and are removed afterwards. The cross-node mode (``--peer``) is in
``doctor_peer.py``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._fs import fsync_dir, link_no_replace, unique_name, unlink_quietly, volume_clock, write_file
from .fstype import Mount, find_mount
from .mounts import listing_cache_advice

OK, WARN, FAIL, INFO = "ok", "warn", "fail", "info"
#: Checks the files store needs; any of them failing makes doctor exit 1.
REQUIRED = ("writable", "link", "fsync")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "details": self.details,
        }


def probe_dir(root: Path) -> Path:
    return root / "doctor"


def run_checks(root: Path, *, watch_timeout: float = 2.0) -> list[Check]:
    """The single-node checks, in order; later ones are skipped if the root is unusable."""
    directory = probe_dir(root)
    writable = check_writable(directory)
    checks = [writable]
    if writable.status == FAIL:
        return checks
    mount = find_mount(directory)
    checks += [
        check_link(directory),
        check_fsync(directory),
        check_filesystem(mount),
        check_watcher(directory, watch_timeout),
        check_caches(mount),
        check_clock(directory),
    ]
    checks.append(check_stores(checks, mount))
    return checks


def check_writable(directory: Path) -> Check:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / unique_name("writable")
        write_file(path, b"probe", fsync=False)
        unlink_quietly(path)
    except OSError as exc:
        return Check("writable", FAIL, f"cannot create a file in {directory}: {exc.strerror}")
    return Check("writable", OK, f"{directory} accepts new files")


def check_link(directory: Path) -> Check:
    """A final name must be taken without replacing what is there (wire format v1)."""
    tmp, final = directory / unique_name("link-src"), directory / unique_name("link-final")
    try:
        write_file(tmp, b"first", fsync=False)
        hard = link_no_replace(tmp, final, allow_rename=False)
        if not hard:
            link_no_replace(tmp, final)
        write_file(tmp, b"second", fsync=False)
        try:
            link_no_replace(tmp, final)
        except FileExistsError:
            replaced = False
        else:
            replaced = True
        if replaced or final.read_bytes() != b"first":
            return Check(
                "link", FAIL, "taking a name replaced an existing file: events could be lost"
            )
    except OSError as exc:
        return Check("link", FAIL, f"temp -> final name failed: {exc}")
    finally:
        unlink_quietly(tmp)
        unlink_quietly(final)
    if not hard:
        return Check(
            "link",
            WARN,
            "no hard links: names are taken by rename after an existence check, safe as long "
            "as every machine has its own node name",
            {"hard_links": False},
        )
    return Check("link", OK, "temp -> final by hard link never replaces an existing file",
                 {"hard_links": True})  # fmt: skip


def check_fsync(directory: Path) -> Check:
    path = directory / unique_name("fsync")
    try:
        t0 = time.monotonic()
        write_file(path, b"x" * 512, fsync=True)
        fsync_dir(directory)
        elapsed = time.monotonic() - t0
    except OSError as exc:
        return Check("fsync", FAIL, f"fsync failed: {exc}; published events would not be durable")
    finally:
        unlink_quietly(path)
    return Check("fsync", OK, f"file and directory fsync work ({elapsed * 1000:.1f} ms)",
                 {"seconds": elapsed})  # fmt: skip


def check_filesystem(mount: Mount) -> Check:
    kind = "network" if mount.network else "local"
    return Check(
        "filesystem",
        INFO,
        f"{mount.fstype} ({kind}) mounted at {mount.point}",
        {"fstype": mount.fstype, "network": mount.network, "mount_point": mount.point,
         "options": mount.options, "source": mount.source},
    )  # fmt: skip


def check_watcher(directory: Path, timeout: float) -> Check:
    """Does the file watcher report a write made through this mount, within *timeout*?"""
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    name = unique_name("watch")
    seen = threading.Event()

    class Spot(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if os.path.basename(str(event.src_path)) == name:
                seen.set()

    observer = Observer()
    observer.daemon = True
    try:
        observer.schedule(Spot(), str(directory))
        observer.start()
    except OSError as exc:
        return Check("watcher", WARN, f"no file watcher here ({exc}): polling alone delivers")
    try:
        t0 = time.monotonic()
        write_file(directory / name, b"", fsync=False)
        fired = seen.wait(timeout)
        elapsed = time.monotonic() - t0
    finally:
        observer.stop()
        observer.join(5)
        unlink_quietly(directory / name)
    if not fired:
        return Check("watcher", WARN, f"the watcher did not see a write within {timeout:.1f}s: "
                     "followers here rely on polling (poll_interval)", {"seen": False})  # fmt: skip
    return Check(
        "watcher",
        INFO,
        f"the watcher saw this node's write in {elapsed * 1000:.0f} ms (a fast path for "
        "processes of this host only: other machines' writes are found by polling)",
        {"seen": True, "seconds": elapsed},
    )


def check_caches(mount: Mount) -> Check:
    status, summary, details = listing_cache_advice(mount)
    return Check("caches", status, summary, details)


def check_clock(directory: Path) -> Check:
    """This node's clock against the volume's (mtime of a fresh file)."""
    before = time.time()
    volume = volume_clock(directory)
    after = time.time()
    # mtimes have 1 s resolution on some servers: only an offset beyond that is reported
    offset = volume - (before + after) / 2
    details = {"offset": offset}
    if abs(offset) > 2.0:
        return Check(
            "clock",
            WARN,
            f"this node's clock is {-offset:+.1f}s off the volume's: harmless to delivery and "
            "order (never clock-based), but status ages and cross-node merge order drift; "
            "run NTP",
            details,
        )
    return Check(
        "clock", OK, f"this node's clock agrees with the volume's ({-offset:+.2f}s)", details
    )


def check_stores(checks: list[Check], mount: Mount) -> Check:
    failed = [c.name for c in checks if c.name in REQUIRED and c.status == FAIL]
    safe, why = [], {}
    if failed:
        why["files"] = f"unsafe: {', '.join(failed)} failed"
    else:
        safe.append("files")
        why["files"] = "safe: new names never replace, fsync works, no locks on the share needed"
    if mount.network:
        why["sqlite"] = (
            "unsafe: SQLite's WAL needs shared memory between all processes (one host) and "
            "network file locks are unreliable; use the files store here"
        )
    else:
        safe.append("sqlite")
        why["sqlite"] = "safe for processes of this host only (local file system, WAL)"
    status = OK if "files" in safe else FAIL
    return Check("stores", status, "safe here: " + (", ".join(safe) or "none"),
                 {"safe": safe, "why": why})  # fmt: skip


def files_store_safe(checks: list[Check]) -> bool:
    return all(c.status != FAIL for c in checks if c.name in (*REQUIRED, "stores"))


def render(target: Path, checks: list[Check]) -> str:
    lines = [f"fsevents doctor: {target}"]
    for check in checks:
        lines.append(f"  [{check.status.upper():>4}] {check.name:<12} {check.summary}")
        if check.name == "stores":
            for store, reason in check.details["why"].items():
                lines.append(f"{'':21}{store}: {reason}")
        for line in check.details.get("advice", []):
            lines.append(f"{'':21}-> {line}")
    return "\n".join(lines)
