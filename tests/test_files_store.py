"""Files-store specifics: the layout on disk, the root, sequence numbers, hostile files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import write_raw

from fsevents import Bus, RootError
from fsevents.stores.files import FilesStore

FAST = {"poll_interval": 0.05, "scan_interval": 0.1}


def test_publish_returns_once_the_file_is_on_the_volume(root: Path) -> None:
    with Bus(root, node="web1") as bus:
        event = bus.publish("x.y", {"n": 1})
        path = bus.store.event_path("web1", event.seq)  # type: ignore[attr-defined]
        assert json.loads(path.read_bytes())["data"] == {"n": 1}
        assert not list((root / "tmp").iterdir()), "temp files must be gone"


def test_publish_many_numbers_contiguously_with_one_round_of_fsyncs(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = Bus(root, node="web1")
    bus.publish("warm.up")  # the first publish also creates directories and the heartbeat
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real_fsync(fd))
    events = bus.publish_many([("t.x", i) for i in range(10)])
    assert [e.seq for e in events] == list(range(2, 12))
    # one fsync per file plus one for their directory, instead of 2 per event one by one
    assert len(calls) == 11
    bus.close()


def test_root_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(RootError, match="is not a directory"):
        Bus(target, node="a")
    with pytest.raises(RootError, match="cannot create"):
        Bus(target / "sub", node="a")


def test_root_of_another_format(root: Path) -> None:
    Bus(root, node="a")
    marker = root / "fsevents.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "format": 2}))
    with pytest.raises(RootError, match="declares format 2"):
        Bus(root, node="a")


def test_a_stale_counter_resyncs_instead_of_overwriting(root: Path) -> None:
    bus = Bus(root, node="web1")
    bus.publish_many([("t", 1), ("t", 2)])
    bus.store.local.write_counter("web1", 0)  # as after a crash between link and counter
    event = bus.publish("t", 3)
    assert event.seq == 3
    assert json.loads(bus.store.event_path("web1", 1).read_bytes())["data"] == 1  # type: ignore[attr-defined]


def test_corrupt_and_foreign_files_are_skipped_and_counted(root: Path) -> None:
    store = FilesStore(root)
    write_raw(store, "w", 1, "first")
    write_raw(store, "w", 2, content=b"{not json")
    write_raw(store, "w", 3, content=b'{"v": 1}')
    copied = write_raw(store, "w", 4, content=store.event_path("w", 1).read_bytes())
    big = write_raw(store, "w", 5, content=b" " * (2 * 1024 * 1024))
    store.event_path("w", 6).mkdir()
    store.event_path("w", 7).symlink_to(store.event_path("w", 1))
    write_raw(store, "w", 8, "last")
    (root / "streams" / "notes.txt").write_text("hello")
    (root / "streams" / ".nfs0001").mkdir()
    (root / "streams" / "w" / "00000000" / "README").write_text("x")
    bus = Bus(store=store, node="reader", **FAST)
    events = list(bus.follow(start="beginning", timeout=0.5))
    assert [e.data for e in events] == ["first", "last"]
    assert copied.exists() and big.exists()


def test_poll_opens_next_files_by_name_and_never_lists(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Bus(root, node="w")
    for n in range(3):
        Bus(root, node=f"n{n}").publish("t")
    writer.publish_many([("t", i) for i in range(2500)])
    store = FilesStore(root)
    reader = store.reader(store.head(), hole_timeout=1, scan_interval=3600)
    reader.poll(100)  # the first poll scans (lists) once
    listed, opened = [], []
    real_listdir, real_open = os.listdir, os.open
    monkeypatch.setattr(os, "listdir", lambda p: listed.append(p) or real_listdir(p))
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opened.append(p) or real_open(p, *a, **k))
    for _ in range(10):
        assert reader.poll(100) == []
    assert listed == []
    assert len(opened) == 10 * 4, "one open per stream per poll, whatever is retained"
