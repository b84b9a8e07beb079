"""The Bus API in one process: publish, subscribe, follow, durable consumers, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import Inbox, write_raw

import fsevents
from fsevents import Bus, ConsumerBusyError, InvalidEventError, NodeConflictError, RootError
from fsevents.stores.files import FilesStore

FAST = {"poll_interval": 0.05, "scan_interval": 0.1}


def test_events_flow_both_ways_between_nodes(root: Path) -> None:
    web1, web2 = Bus(root, node="web1", **FAST), Bus(root, node="web2", **FAST)
    got1, got2 = Inbox(), Inbox()
    web1.subscribe("*", got1)
    web2.subscribe("*", got2)
    with web1, web2:
        sent = web1.publish("cache.invalidate", {"key": "products"})
        web2.publish("settings.changed", [1, 2])
        assert got2.wait(1)[0] == sent
        assert got1.wait(1)[0].data == [1, 2]
    assert sent.id == "web1:1" and sent.node == "web1" and sent.data == {"key": "products"}


def test_a_process_skips_its_own_events_but_its_node_siblings_do_not(root: Path) -> None:
    worker1, worker2 = Bus(root, node="web1", **FAST), Bus(root, node="web1", **FAST)
    own, sibling = Inbox(), Inbox()
    worker1.subscribe("*", own)
    worker2.subscribe("*", sibling)
    with worker1, worker2:
        worker1.publish("a.b")
        assert sibling.wait(1)[0].origin == worker1.origin
        worker2.publish("a.c")  # a later event, so the first one has surely been seen
        own.wait(1)
    assert own.ids == ["web1:2"]


def test_receive_own_delivers_a_process_its_own_events(root: Path) -> None:
    bus = Bus(root, node="web1", receive_own=True, **FAST)
    inbox = Inbox()
    bus.subscribe("*", inbox)
    with bus:
        bus.publish("a.b", 1)
        assert inbox.wait(1)[0].data == 1


def test_subscribe_patterns_and_decorator(root: Path) -> None:
    sender, receiver = Bus(root, node="a", **FAST), Bus(root, node="b", **FAST)
    caches: list[str] = []
    everything = Inbox()

    @receiver.subscribe("cache.*")
    def on_cache(event: fsevents.Event) -> None:
        caches.append(event.topic)

    receiver.subscribe("*", everything)
    with sender, receiver:
        sender.publish_many([("cache.drop", 1), ("settings.changed", 2), ("cache.clear", 3)])
        everything.wait(3)
    assert caches == ["cache.drop", "cache.clear"]
    receiver.unsubscribe(on_cache)


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


def test_follow_from_beginning_now_and_a_position(root: Path) -> None:
    bus = Bus(root, node="web1", **FAST)
    bus.publish_many([("a.x", 1), ("b.x", 2), ("a.y", 3)])
    reader = Bus(root, node="reader", **FAST)
    everything = [e.data for e in reader.follow(start="beginning", timeout=0.3)]
    assert everything == [1, 2, 3]
    assert [e.data for e in reader.follow("a.*", start="beginning", timeout=0.3)] == [1, 3]
    assert [e.data for e in reader.follow(start={"web1": 2}, timeout=0.3)] == [3]
    assert list(reader.follow(start="now", timeout=0.3)) == []


def test_durable_consumer_resumes_after_stop(root: Path) -> None:
    publisher = Bus(root, node="pub")
    publisher.publish("before.creation")
    consumer = Bus(root, node="sub", consumer="indexer", **FAST)
    publisher.publish("after.creation.before.start")  # must not be missed
    inbox = Inbox()
    consumer.subscribe("*", inbox)
    with consumer:
        assert inbox.wait(1)[0].topic == "after.creation.before.start"
    publisher.publish_many([("while.stopped", 1), ("while.stopped", 2)])
    again = Bus(root, node="sub", consumer="indexer", **FAST)
    later = Inbox()
    again.subscribe("*", later)
    with again:
        assert [e.seq for e in later.wait(2)] == [3, 4]


def test_a_durable_consumer_runs_in_one_process_at_a_time(root: Path) -> None:
    with (
        Bus(root, node="sub", consumer="indexer", **FAST),
        pytest.raises(ConsumerBusyError, match="in use by another process"),
    ):
        Bus(root, node="sub", consumer="indexer", **FAST)
    Bus(root, node="sub", consumer="indexer", **FAST).close()  # free again once stopped


def test_failing_handler_is_retried_then_recorded_and_the_consumer_moves_on(root: Path) -> None:
    publisher = Bus(root, node="pub")
    consumer = Bus(root, node="sub", consumer="c1", handler_retries=2, **FAST)
    attempts: list[int] = []
    inbox = Inbox()

    @consumer.subscribe("*")
    def flaky(event: fsevents.Event) -> None:
        if event.data == "poison":
            attempts.append(event.seq)
            raise RuntimeError("cannot handle this one")
        inbox(event)

    with consumer:
        publisher.publish_many([("t", "poison"), ("t", "fine")])
        inbox.wait(1)
    assert attempts == [1, 1, 1]
    failed = consumer.store.local.dir / "cursors" / "c1.failed.jsonl"
    record = json.loads(failed.read_text().splitlines()[0])
    assert record["event"]["id"] == "pub:1" and "cannot handle" in record["error"]
    assert consumer.stats()["failed_events"] == 1


def test_delivery_without_the_watcher(root: Path) -> None:
    publisher = Bus(root, node="pub")
    publisher.publish("t", 0)  # a known stream: polled by name every poll_interval
    follower = Bus(root, node="sub", watch=False, poll_interval=0.1, scan_interval=3600)
    inbox = Inbox()
    follower.subscribe("*", inbox)
    with follower:
        publisher.publish("t", 1)
        assert inbox.wait(1, timeout=5)[0].data == 1


def test_a_new_node_is_discovered_by_the_scan_without_the_watcher(root: Path) -> None:
    follower = Bus(root, node="sub", watch=False, poll_interval=0.1, scan_interval=0.2)
    inbox = Inbox()
    follower.subscribe("*", inbox)
    with follower:
        Bus(root, node="newcomer").publish_many([("t", 1), ("t", 2)])
        assert [e.id for e in inbox.wait(2, timeout=5)] == ["newcomer:1", "newcomer:2"]


@pytest.mark.parametrize(
    "topic, data, match",
    [
        ("bad topic", None, "invalid topic"),
        ("ok", {"x": {1, 2}}, "not JSON-serialisable"),
        ("ok", "x" * 2_000_000, "over the 1048576-byte limit"),
    ],
)
def test_bad_input_raises_before_anything_is_written(
    root: Path, topic: str, data: object, match: str
) -> None:
    bus = Bus(root, node="web1")
    with pytest.raises(InvalidEventError, match=match):
        bus.publish(topic, data)
    assert not (root / "streams" / "web1").exists()
    assert not list((root / "tmp").iterdir())


def test_bad_options_are_refused() -> None:
    with pytest.raises(InvalidEventError, match="invalid node name"):
        Bus("/tmp/unused", node="../etc")
    with pytest.raises(ValueError, match="poll_interval must be > 0"):
        Bus("/tmp/unused", node="a", poll_interval=0)


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


def test_two_machines_claiming_one_node_name(root: Path, tmp_path: Path) -> None:
    first = Bus(root, node="web1", state_dir=tmp_path / "machine1")
    first.publish("t", "mine")
    second = Bus(root, node="web1", state_dir=tmp_path / "machine2")
    with pytest.raises(NodeConflictError, match="in use by another machine"):
        second.publish("t", "theirs")
    with pytest.raises(NodeConflictError):
        second.start()
    assert json.loads(first.store.event_path("web1", 1).read_bytes())["data"] == "mine"  # type: ignore[attr-defined]


def test_a_stale_counter_resyncs_instead_of_overwriting(root: Path) -> None:
    bus = Bus(root, node="web1")
    bus.publish_many([("t", 1), ("t", 2)])
    bus.store.local.write_counter("web1", 0)  # as after a crash between link and counter
    event = bus.publish("t", 3)
    assert event.seq == 3
    assert json.loads(bus.store.event_path("web1", 1).read_bytes())["data"] == 1  # type: ignore[attr-defined]


def test_lost_local_state_resumes_from_the_stream(root: Path, tmp_path: Path) -> None:
    Bus(root, node="web1", state_dir=tmp_path / "old").publish_many([("t", 1), ("t", 2)])
    # same machine, state dir wiped: the node's own heartbeat names another machine id now,
    # so the new state must come from the stream without a conflict when the claim expired
    store = FilesStore(root, state_dir=tmp_path / "new")
    beat = store.read_heartbeat("web1")
    assert beat is not None
    store.write_heartbeat("web1", {**beat, "last_seen": 0})
    event = Bus(store=store, node="web1").publish("t", 3)
    assert event.seq == 3


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
