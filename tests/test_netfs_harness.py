"""The sshfs harness behaves like a real shared volume between two nodes.

These tests measure the claims the design rests on (docs: "Probe by name, don't list";
"inotify never sees another host's writes"; "locks on the share do not work reliably").
Run with ``-s`` to see the measured numbers.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from netfs import SharedDirs, SshfsHarness, is_sshfs_mounted, wait_for

PROMPT = 5.0  # seconds: "at once" for an open by name, with room for a slow CI machine


def _readable(path: Path) -> bool:
    try:
        with open(path, "rb"):
            return True
    except FileNotFoundError:
        return False


def test_harness_mounts_two_sshfs_clients(sshfs: SshfsHarness) -> None:
    print(f"\nharness start-up: {sshfs.startup_seconds:.2f} s, sshd port {sshfs.port}")
    assert sshfs.port > 1024
    assert is_sshfs_mounted(sshfs.mount_a)
    assert is_sshfs_mounted(sshfs.mount_b)
    assert sshfs.mount_a != sshfs.mount_b
    # Two mounts of one directory are two devices: the kernel sees different files.
    assert os.stat(sshfs.mount_a).st_dev != os.stat(sshfs.mount_b).st_dev


def test_open_by_name_sees_other_mounts_file_promptly(shared_dirs: SharedDirs) -> None:
    a, b = shared_dirs
    t0 = time.monotonic()
    (a / "1.json").write_text('{"x": 1}')
    wait_for(lambda: _readable(b / "1.json"), PROMPT, what="1.json via mount_b")
    elapsed = time.monotonic() - t0
    print(f"\nopen by name via mount_b after {elapsed * 1000:.0f} ms")
    assert (b / "1.json").read_text() == '{"x": 1}'


def test_open_by_name_after_a_miss_sees_new_file_promptly(shared_dirs: SharedDirs) -> None:
    # A follower probes seq+1 before it exists; a cached negative lookup would hide the
    # event until the cache expires.
    a, b = shared_dirs
    for _ in range(3):
        assert not _readable(b / "2.json")
    t0 = time.monotonic()
    (a / "2.json").write_text("{}")
    wait_for(lambda: _readable(b / "2.json"), PROMPT, what="2.json via mount_b after a miss")
    print(f"\nopen by name after a miss: {(time.monotonic() - t0) * 1000:.0f} ms")


# Event types that mean "something was written" (what a waker reacts to). watchdog >= 4
# also reports opened / closed_no_write, which our own reads through mount_b cause.
_WRITE_EVENTS = {"created", "modified", "moved", "closed", "deleted"}


def _inotify_observer(
    path: Path, seen: dict[str, list[str]], wrote: dict[str, threading.Event]
) -> Any:
    observers = pytest.importorskip("watchdog.observers.inotify")
    events = pytest.importorskip("watchdog.events")

    class Handler(events.FileSystemEventHandler):  # type: ignore[misc,name-defined]
        def on_any_event(self, event: object) -> None:
            for p in (getattr(event, "src_path", ""), getattr(event, "dest_path", "")):
                name = os.path.basename(os.fsdecode(p or ""))
                if name in wrote:
                    kind = str(getattr(event, "event_type", "?"))
                    seen[name].append(kind)
                    if kind in _WRITE_EVENTS:
                        wrote[name].set()

    observer = observers.InotifyObserver()
    observer.schedule(Handler(), str(path), recursive=False)
    return observer


def test_inotify_on_mount_b_misses_writes_through_mount_a(shared_dirs: SharedDirs) -> None:
    a, b = shared_dirs
    names = ("remote.json", "local.json")
    seen: dict[str, list[str]] = {n: [] for n in names}
    wrote = {n: threading.Event() for n in names}
    observer = _inotify_observer(b, seen, wrote)
    observer.start()
    try:
        (a / "remote.json").write_text("{}")
        wait_for(lambda: _readable(b / "remote.json"), PROMPT, what="remote.json via mount_b")
        # Negative check: a bounded wait for an event that must not come.
        remote_seen = wrote["remote.json"].wait(2.0)
        (b / "local.json").write_text("{}")
        local_seen = wrote["local.json"].wait(PROMPT)
    finally:
        observer.stop()
        observer.join(10)
    print(f"\ninotify via mount_b saw: {seen}")
    assert not remote_seen, f"inotify on mount_b saw a write through mount_a: {seen}"
    assert local_seen, f"inotify on mount_b missed a write through mount_b: {seen}"
    # Our own open() through mount_b is reported: a waker must ignore opened/closed_no_write
    # or its own probes would wake it again.
    assert set(seen["remote.json"]) <= {"opened", "closed_no_write"}


_TRY_LOCK = """
import errno, fcntl, sys
with open(sys.argv[1], "r+b") as f:
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        sys.exit(1 if e.errno in (errno.EACCES, errno.EAGAIN) else 2)
sys.exit(0)
"""


def _other_process_gets_lock(path: Path) -> bool:
    # POSIX locks belong to a process: the contender must be another process.
    result = subprocess.run(
        [sys.executable, "-c", _TRY_LOCK, str(path)], capture_output=True, timeout=30
    )
    assert result.returncode in (0, 1), result.stderr.decode(errors="replace")
    return result.returncode == 0


def test_posix_lock_through_mount_a_does_not_exclude_mount_b(shared_dirs: SharedDirs) -> None:
    a, b = shared_dirs
    (a / "lock").write_bytes(b"\0")
    wait_for(lambda: _readable(b / "lock"), PROMPT, what="lock via mount_b")
    with open(a / "lock", "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Control: the same mount does exclude, so the probe can detect a held lock.
        assert not _other_process_gets_lock(a / "lock")
        # The claim: another client of the same share is not excluded at all.
        assert _other_process_gets_lock(b / "lock")
    print("\nlockf via mount_a: excludes mount_a contender, does NOT exclude mount_b")


@pytest.mark.slow
def test_listing_is_stale_while_open_by_name_is_not(shared_dirs: SharedDirs) -> None:
    a, b = shared_dirs
    assert os.listdir(b) == []  # prime mount_b's directory cache
    t0 = time.monotonic()
    (a / "new.json").write_text("{}")
    seen_open = seen_list = None
    deadline = t0 + 90
    while seen_list is None and time.monotonic() < deadline:
        now = time.monotonic() - t0
        if seen_open is None and _readable(b / "new.json"):
            seen_open = now
        if "new.json" in os.listdir(b):
            seen_list = time.monotonic() - t0
        else:
            time.sleep(0.05)  # poll interval of the measurement, not a wait for a result
    assert seen_open is not None and seen_open < PROMPT
    listed = "never" if seen_list is None else f"{seen_list:.1f} s"
    print(f"\nvia mount_b: open by name after {seen_open * 1000:.0f} ms, listing after {listed}")
    assert seen_list is not None, "listing via mount_b never showed the file within 90 s"
    assert seen_open < seen_list


def test_unmount_busy_mount_and_remount(sshfs: SshfsHarness, shared_dirs: SharedDirs) -> None:
    a, b = shared_dirs
    (a / "kept.json").write_text("{}")
    wait_for(lambda: _readable(b / "kept.json"), PROMPT, what="kept.json via mount_b")
    fd = os.open(b / "kept.json", os.O_RDONLY)  # busy: plain `fusermount -u` gets EBUSY
    try:
        sshfs.unmount("b")
        assert not is_sshfs_mounted(sshfs.mount_b)
        with pytest.raises(OSError) as exc_info:  # the handle outlived its mount
            os.read(fd, 10)
        assert exc_info.value.errno == errno.ENOTCONN
    finally:
        with contextlib.suppress(OSError):  # close() also reports ENOTCONN
            os.close(fd)
    assert not (b / "kept.json").exists()  # the mount point is an empty local dir now
    assert (a / "kept.json").read_text() == "{}"  # the other client is unaffected
    sshfs.unmount("b")  # already gone: no error
    sshfs.remount("b")
    assert is_sshfs_mounted(sshfs.mount_b)
    wait_for(lambda: _readable(b / "kept.json"), PROMPT, what="kept.json after remount")
