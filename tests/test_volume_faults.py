"""Faults of a real volume: full (a tiny tmpfs), read-only (remount ro), permission denied.

Mounting needs root (CAP_SYS_ADMIN); other users skip these with the reason. The permission
tests drop to the user ``nobody`` inside a child process, after the interpreter and fsevents
are loaded (this machine's interpreter lives under /root, which nobody cannot read).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Inbox

from fsevents import Bus, PublishError
from fsevents.event import Event

NOBODY, NOGROUP = 65534, 65534
STRANGERS = 1  # a group "nobody" is not in (daemon on Debian)


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def tiny_volume() -> Iterator[Path]:
    """A 256 KiB tmpfs, mounted for the test and unmounted after it."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    point = Path(tempfile.mkdtemp(prefix="fsevents-tiny-"))
    done = _mount("-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(point))
    if done.returncode != 0:
        point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs CAP_SYS_ADMIN")
    try:
        yield point
    finally:
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)
        point.rmdir()


def _event_files(root: Path) -> dict[int, Event]:
    found = {}
    for path in (root / "streams").rglob("*.json"):
        event = Event.decode(path.read_bytes())  # raises if any file is partial
        found[event.seq] = event
    return found


def test_disk_full_acknowledges_only_durable_events_and_recovers(
    tiny_volume: Path, tmp_path: Path
) -> None:
    root = tiny_volume / "events"
    bus = Bus(root, node="web1", state_dir=tmp_path / "state")
    payload = "x" * 6000
    acked = []
    with pytest.raises(PublishError) as raised:
        for _ in range(1000):
            acked.append(bus.publish("fill.up", payload).seq)
    error = raised.value
    assert error.errno == errno.ENOSPC
    assert str(root) in str(error) and "is full" in str(error) and "prune" in str(error)
    assert acked, "the volume should have held some events first"
    assert not list((root / "tmp").iterdir()), "no temp file may be left behind"
    assert sorted(_event_files(root)) == acked, "visible files are exactly the acknowledged ones"
    with pytest.raises(PublishError):
        bus.publish_many([("batch", payload)] * 5)  # a batch fails whole: nothing linked
    assert sorted(_event_files(root)) == acked
    assert not list((root / "tmp").iterdir())

    assert _mount("-o", "remount,size=2m", str(tiny_volume)).returncode == 0
    after = bus.publish_many([("after", i) for i in range(3)])
    assert [e.seq for e in after] == [acked[-1] + 1, acked[-1] + 2, acked[-1] + 3]
    every = list(Bus(root, node="reader", state_dir=tmp_path / "s2").follow(
        start="beginning", timeout=0.3))  # fmt: skip
    assert [e.seq for e in every] == [*acked, *(e.seq for e in after)]
    bus.close()


def test_read_only_volume_refuses_clearly_and_recovers(tiny_volume: Path, tmp_path: Path) -> None:
    root = tiny_volume / "events"
    inbox = Inbox()
    publisher = Bus(root, node="web1", state_dir=tmp_path / "state")
    publisher.publish("first")
    follower = Bus(root, node="web2", state_dir=tmp_path / "s2", poll_interval=0.05)
    follower.subscribe("*", inbox)
    with follower:
        assert _mount("-o", "remount,ro", str(tiny_volume)).returncode == 0
        try:
            with pytest.raises(PublishError) as raised:
                publisher.publish("refused")
            assert raised.value.errno == errno.EROFS
            assert "read-only: remount it read-write" in str(raised.value)
            assert str(root) in str(raised.value)
        finally:
            assert _mount("-o", "remount,rw", str(tiny_volume)).returncode == 0
        publisher.publish("second")
        assert [e.topic for e in inbox.wait(1)] == ["second"]
    assert not list((root / "tmp").iterdir())
    assert sorted(_event_files(root)) == [1, 2]
    publisher.close()


# -- users and groups ----------------------------------------------------------------------

_AS_USER = """
import json, os, sys
import fsevents.cli  # load everything while still root: the interpreter lives under /root
fsevents.cli.build_parser().parse_args(sys.argv[4:])  # argparse imports gettext lazily
uid, gid, groups = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
os.setgroups(groups)
os.setgid(gid)
os.setuid(uid)
sys.exit(fsevents.cli.main(sys.argv[4:]))
"""


def _cli_as(
    uid: int, gid: int, groups: list[int], state: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _AS_USER, str(uid), str(gid), json.dumps(groups), *args],
        env={**os.environ, "FSEVENTS_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )


@pytest.fixture
def farm_dir() -> Iterator[Path]:
    """A directory every user can reach (pytest's tmp_path is private to root)."""
    if os.geteuid() != 0:
        pytest.skip("switching to the user nobody needs root")
    base = Path(tempfile.mkdtemp(prefix="fsevents-farm-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_nodes_running_as_other_users_of_one_group_share_a_root(farm_dir: Path) -> None:
    shared = farm_dir / "shared"
    shared.mkdir()
    os.chown(shared, 0, NOGROUP)
    shared.chmod(0o2775)  # what an admin sets up: the farm's group, setgid
    old_umask = os.umask(0o077)  # a strict umask must not make the root private
    try:
        Bus(shared / "events", node="web1").publish("by.root")
    finally:
        os.umask(old_umask)
    root = shared / "events"
    for directory in (root, root / "streams", root / "tmp", root / "nodes"):
        info = directory.stat()
        assert (info.st_mode & 0o7777, info.st_gid) == (0o2775, NOGROUP), directory
    for file in (root / "fsevents.json", root / "nodes" / "web1.json"):
        assert file.stat().st_mode & 0o777 == 0o644, file
    state = farm_dir / "nobody-state"
    state.mkdir()
    os.chown(state, NOBODY, NOGROUP)

    stranger = _cli_as(NOBODY, STRANGERS, [], state, "publish", "--root", str(root),
                       "--node", "web2", "t.x", "1")  # fmt: skip
    assert stranger.returncode == 2
    message = stranger.stderr.strip().splitlines()[-1]  # after the heartbeat's warning
    assert message.startswith("fsevents: error: "), stranger.stderr
    assert "Permission denied" in message and str(root) in message, message
    assert "needs write access" in message, message
    assert not list((root / "tmp").iterdir())

    member = _cli_as(NOBODY, NOGROUP, [NOGROUP], state, "publish", "--root", str(root),
                     "--node", "web2", "t.x", "2")  # fmt: skip
    assert member.returncode == 0, member.stderr
    assert member.stdout.strip() == "web2:1"
    web2 = root / "streams" / "web2"
    assert (web2.stat().st_mode & 0o7777, web2.stat().st_gid) == (0o2775, NOGROUP)
    assert web2.stat().st_uid == NOBODY
    # and root's node reads what nobody wrote
    events = list(Bus(root, node="web1").follow(start="beginning", timeout=0.3))
    assert [(e.stream, e.data) for e in events] == [("web1", None), ("web2", 2)]
