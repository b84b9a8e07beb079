"""Retention: pruning by age and count, gone nodes, gaps told to consumers, safe removal."""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from pathlib import Path

import pytest
from helpers import Inbox
from procs import fsevents_cli, wait_for

import fsevents
from fsevents import Bus, FilesStore, Gap
from fsevents.retention import Retention, prune_stream
from fsevents.stores import files_reader

FAST = {"poll_interval": 0.05, "scan_interval": 0.1}


def _store(root: Path) -> FilesStore:
    return FilesStore(root, segment_size=10)


def _retained(store: FilesStore, stream: str) -> list[int]:
    return [s for seg in store.segments(stream) for s in store.seqs_in_segment(stream, seg)]


def test_count_keeps_the_newest_events_and_drops_whole_old_segments(root: Path) -> None:
    store = _store(root)
    Bus(store=store, node="web1").publish_many([("t", i) for i in range(35)])
    removed = prune_stream(store, "web1", Retention(age=None, count=12), now=0)
    assert removed == 23
    assert _retained(store, "web1") == list(range(24, 36))
    assert store.segments("web1") == [2, 3], "emptied segment dirs are gone"
    assert not list(store.tmp_dir.iterdir()), "trash is deleted after the rename"


def test_age_uses_the_event_times_of_the_nodes_own_clock(root: Path) -> None:
    store = _store(root)
    now = [1000.0]
    bus = Bus(store=store, node="web1", clock=lambda: now[0])
    for i in range(25):
        now[0] = 1000.0 + i
        bus.publish("t", i)
    # older than 1020 - 5 = 1015: the events stamped 1000..1014, i.e. seqs 1..15
    assert prune_stream(store, "web1", Retention(age=5, count=None), now=1020) == 15
    assert store.oldest_seq("web1") == 16


def test_the_newest_event_is_never_removed(root: Path) -> None:
    store = _store(root)
    Bus(store=store, node="web1", clock=lambda: 0.0).publish_many([("t", 1), ("t", 2)])
    prune_stream(store, "web1", Retention(age=1, count=1), now=10_000)
    assert _retained(store, "web1") == [2]
    # with the local counter lost, the next seq still comes from the stream
    store.local.dir.joinpath("counters", "web1").unlink()
    assert Bus(store=store, node="web1").publish("t").seq == 3


def test_follower_prunes_its_own_stream_periodically(root: Path) -> None:
    bus = Bus(root, node="web1", retention_count=5, prune_interval=0.05, **FAST)
    other = Bus(root, node="web2")
    other.publish_many([("t", i) for i in range(10)])
    with bus:
        bus.publish_many([("t", i) for i in range(20)])
        # the counter moves once a prune has returned: wait on it, then look at the files
        wait_for(lambda: bus.stats().get("pruned") == 15, 10, what="pruning by the follower")
        assert bus.store.oldest_seq("web1") == 16  # type: ignore[attr-defined]
    assert bus.store.oldest_seq("web2") == 1, "a node prunes only its own live stream"  # type: ignore[attr-defined]


def _age(path: Path, seconds: float) -> None:
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        stat = item.stat()
        os.utime(item, (stat.st_atime - seconds, stat.st_mtime - seconds))


def test_streams_of_gone_nodes_are_removed_by_anyone_judged_by_the_volume_clock(
    root: Path,
) -> None:
    store = FilesStore(root)
    Bus(store=store, node="gone").publish("t")
    # "alive" runs 10 minutes slow: its events look 20 minutes old to "pruner", whose
    # clock runs 10 minutes fast, yet its files are fresh by the volume's clock
    Bus(store=store, node="alive", clock=lambda: time.time() - 600).publish("t")
    _age(root / "streams" / "gone", 3 * 86400)
    _age(root / "nodes" / "gone.json", 3 * 86400)
    pruner = Bus(store=store, node="pruner", retention_age=300, clock=lambda: time.time() + 600)
    report = pruner.prune()
    assert report is not None and report.removed_streams == ["gone"]
    assert store.streams() == ["alive"]
    assert not (root / "nodes" / "gone.json").exists()
    assert store.oldest_seq("alive") == 1


def test_stale_temp_files_are_swept_fresh_ones_kept(root: Path) -> None:
    store = FilesStore(root)
    stale, fresh = store.tmp_dir / "x.1.aaaaaaaaaaaa.tmp", store.tmp_dir / "x.2.bbbbbbbbbbbb.tmp"
    stale.write_bytes(b"half an event")
    fresh.write_bytes(b"being written")
    _age(stale, 3600 + 60)
    report = Bus(store=store, node="web1", tmp_max_age=3600).prune()
    assert report is not None and report.removed_tmp == 1
    assert not stale.exists() and fresh.exists()


def test_a_consumer_behind_the_retention_is_told_then_continues_from_the_oldest(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(root)
    writer = Bus(store=store, node="web1")
    writer.publish("t", 0)
    gaps: list[Gap] = []
    consumer = Bus(store=store, node="web2", consumer="indexer", on_gap=gaps.append, **FAST)
    consumer.start()
    consumer.stop()  # created at "now" = web1:1, then down while web1 goes on
    writer.publish_many([("t", i) for i in range(1, 40)])
    prune_stream(store, "web1", Retention(age=None, count=5), now=0)
    inbox = Inbox()
    consumer.subscribe("*", inbox)
    with caplog.at_level(logging.WARNING), consumer:
        assert [e.seq for e in inbox.wait(5)] == [36, 37, 38, 39, 40]
        assert consumer.stats()["gaps"] == 1
    assert gaps == [Gap("web1", 2, 36)]
    assert "removed by retention before this consumer read them" in caplog.text


def test_a_file_removed_while_being_read_is_harmless(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(root)
    Bus(store=store, node="web1").publish_many([("t", i) for i in range(5)])
    real_read = os.read
    pruned = []

    def read_then_stale(fd: int, n: int) -> bytes:
        if not pruned:  # another node prunes 1..3 while we read 1: NFS says ESTALE
            pruned.append(prune_stream(store, "web1", Retention(age=None, count=2), now=0))
            raise OSError(errno.ESTALE, "Stale file handle")
        return real_read(fd, n)

    monkeypatch.setattr(files_reader.os, "read", read_then_stale)
    gaps: list[Gap] = []
    reader = Bus(store=store, node="r", on_gap=gaps.append, **FAST)
    events = list(reader.follow(start="beginning", timeout=1.0))
    assert pruned == [3]
    assert [e.seq for e in events] == [4, 5]
    assert gaps == [Gap("web1", 1, 4)]


def test_prune_command(root: Path) -> None:
    Bus(root, node="web1").publish_many([("t", i) for i in range(10)])
    done = fsevents_cli("prune", "--root", str(root), "--node", "web1", "--retention-count", "4",
                        "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["removed"] == {"web1": 6}
    text = fsevents_cli("prune", "--root", str(root), "--node", "web1", "--retention-age", "none")
    assert text.returncode == 0 and "removed 0 event(s)" in text.stdout
    bad = fsevents_cli("prune", "--root", str(root), "--retention-count", "0")
    assert bad.returncode == 2 and "must be a whole number >= 1" in bad.stderr


def test_bad_retention_values_are_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="retention_age must be > 0"):
        Bus(root, node="a", retention_age=0)
    with pytest.raises(ValueError, match="retention_count must be an integer >= 1"):
        Bus(root, node="a", retention_count=0)
    assert fsevents.Bus(root, node="a", retention_age=None, retention_count=None).retention


def test_a_failing_prune_is_logged_and_does_not_slow_delivery(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    reader = Bus(root, node="web2", prune_interval=0.05, **FAST)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(root / "streams"))

    monkeypatch.setattr(reader.store, "prune", refuse)
    inbox = Inbox()
    reader.subscribe("*", inbox)
    with caplog.at_level(logging.WARNING), reader:
        wait_for(lambda: reader.stats().get("prune_errors", 0) >= 2, 10, what="two prunes")
        Bus(root, node="web1").publish("t", "still delivered")
        assert inbox.wait(1, 2)[0].data == "still delivered"
    assert "cannot prune the stream of node 'web2'" in caplog.text
    assert reader.stats().get("follower_errors", 0) == 0


def test_a_stale_listing_naming_pruned_files_still_gives_one_gap(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(root)
    Bus(store=store, node="web1").publish_many([("t", i) for i in range(8)])
    stale = {seg: store.seqs_in_segment("web1", seg) for seg in store.segments("web1")}
    prune_stream(store, "web1", Retention(age=None, count=2), now=0)
    # as another client's cached listing (sshfs, ~20 s): the pruned names are still there
    monkeypatch.setattr(store, "segments", lambda stream: sorted(stale))
    monkeypatch.setattr(store, "seqs_in_segment", lambda stream, seg: stale[seg])
    gaps: list[Gap] = []
    reader = store.reader({"web1": 0}, hole_timeout=60, scan_interval=0, on_gap=gaps.append)
    # the first poll finds 1 missing and looks past it (at once, or at the next poll)
    assert [e.seq for e in reader.poll(100) + reader.poll(100)] == [7, 8]
    assert gaps == [Gap("web1", 1, 7)] and reader.counters["holes"] == 0
