"""A network volume that disappears under a running follower, then comes back (sshfs)."""

from __future__ import annotations

import errno
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import Inbox
from netfs import SharedDirs, SshfsHarness, wait_for

from fsevents import Bus
from fsevents.errors import VolumeUnavailableError
from fsevents.stores.files import FilesStore

PROMPT = 15.0


def test_follower_survives_an_unmount_and_delivers_what_was_published_meanwhile(
    sshfs: SshfsHarness, shared_dirs: SharedDirs, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = shared_dirs
    publisher = Bus(a / "events", node="web1")
    publisher.publish("before", 0)
    inbox = Inbox()
    follower = Bus(b / "events", node="web2", poll_interval=0.05, scan_interval=0.2)
    follower.subscribe("*", inbox)
    try:
        with follower, caplog.at_level(logging.WARNING, logger="fsevents"):
            publisher.publish("before", 1)
            inbox.wait(1, PROMPT)
            assert follower.health()["ok"]

            sshfs.unmount("b")  # the mount point is now an empty local directory
            wait_for(lambda: follower.health()["outage_since"], PROMPT, what="outage reported")
            health = follower.health()
            assert health["running"] and not health["ok"]
            assert "fsevents.json is missing" in health["last_error"]
            publisher.publish_many([("during", i) for i in range(5)])
            # the follower keeps failing and backing off, without a new error line each time
            wait_for(
                lambda: follower.stats().get("follower_errors", 0) >= 3, PROMPT, what="retries"
            )
            bare = sshfs.mount_point("b")
            assert not list(bare.iterdir()), "nothing may be written into the bare mount point"

            sshfs.remount("b")
            events = inbox.wait(6, PROMPT)
            wait_for(lambda: follower.health()["ok"], PROMPT, what="outage cleared")
        assert [(e.topic, e.data) for e in events] == [("before", 1)] + [
            ("during", i) for i in range(5)
        ]
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert "remount it" in errors[0].getMessage()
        assert any("recovered after" in r.getMessage() for r in caplog.records)
        assert follower.stats()["outages"] == 1
    finally:
        sshfs.remount("b")  # the session's harness must stay whole for other tests
        publisher.close()


def test_an_empty_mount_point_is_an_outage_not_a_pruned_store(tmp_path: Path) -> None:
    root = tmp_path / "mnt" / "events"
    store = FilesStore(root)
    store.check_root()
    (root / "fsevents.json").rename(tmp_path / "aside.json")
    with pytest.raises(VolumeUnavailableError, match=r"fsevents.json is missing.*remount"):
        store.check_root()
    reader = store.reader({}, hole_timeout=1, scan_interval=3600)
    with pytest.raises(VolumeUnavailableError):
        reader.poll(10)
    # a different root mounted at the same place is not this store either
    FilesStore(tmp_path / "other")
    (tmp_path / "other" / "fsevents.json").rename(root / "fsevents.json")
    with pytest.raises(VolumeUnavailableError, match="belongs to another root"):
        store.check_root()


@pytest.mark.parametrize(
    "error", [errno.EIO, errno.ESTALE, errno.EBUSY, errno.ENOTCONN], ids=errno.errorcode.get
)
def test_follower_backs_off_through_volume_errors_and_resumes(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: int
) -> None:
    failing = threading.Event()
    real_open = os.open

    def flaky_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        # Reads of the root fail like a dying server's; writes (the publisher) still work.
        reading = flags & os.O_ACCMODE == os.O_RDONLY
        if failing.is_set() and reading and str(path).startswith(str(root)):
            raise OSError(error, os.strerror(error), str(path))
        return real_open(path, flags, *args, **kwargs)

    publisher = Bus(root, node="web1")
    inbox = Inbox()
    follower = Bus(root, node="web2", poll_interval=0.02, scan_interval=0.05, watch=False)
    follower.subscribe("*", inbox)
    monkeypatch.setattr(os, "open", flaky_open)
    monkeypatch.setattr(Path, "read_bytes", lambda p: _read_via_os_open(p))
    with follower, caplog.at_level(logging.WARNING, logger="fsevents"):
        publisher.publish("t", 0)
        inbox.wait(1)
        failing.set()
        publisher.publish_many([("t", i) for i in range(1, 4)])
        wait_for(lambda: follower.stats().get("follower_errors", 0) >= 3, PROMPT, what="retries")
        assert follower.health()["outage_since"] is not None
        assert inbox.ids == ["web1:1"]
        failing.clear()
        events = inbox.wait(4)
        wait_for(lambda: follower.health()["ok"], PROMPT, what="outage cleared")
    assert [e.data for e in events] == [0, 1, 2, 3]
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    assert follower.stats()["outages"] == 1


def _read_via_os_open(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def test_follow_rides_out_a_failing_volume(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    publisher = Bus(root, node="web1")
    reader = Bus(root, node="web2", poll_interval=0.02, scan_interval=0.05, watch=False)
    marker, aside = root / "fsevents.json", root.parent / "aside.json"
    publisher.publish("t", 0)
    marker.rename(aside)  # the root is "gone" for the reader's scans
    publisher.publish("t", 1)

    def restore_once_noticed() -> None:
        noticed = lambda: any(r.levelno >= logging.ERROR for r in caplog.records)  # noqa: E731
        wait_for(noticed, PROMPT, what="the outage to be noticed")
        aside.rename(marker)

    restorer = threading.Thread(target=restore_once_noticed)
    got = []
    with caplog.at_level(logging.WARNING, logger="fsevents"):
        restorer.start()
        for event in reader.follow(start={"web1": 0}, timeout=PROMPT):
            got.append(event.data)
            if len(got) == 2:
                break
        restorer.join()
    assert got == [0, 1]
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    assert any("recovered after" in r.getMessage() for r in caplog.records)
