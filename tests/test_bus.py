"""The Bus contract in one process, for every store: publish, subscribe, follow, consumers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import Inbox

import fsevents
from fsevents import Bus, ConsumerBusyError, InvalidEventError, NodeConflictError, RootError

FAST = {"poll_interval": 0.05, "scan_interval": 0.1}


def test_events_flow_both_ways_between_nodes(target: str) -> None:
    web1, web2 = Bus(target, node="web1", **FAST), Bus(target, node="web2", **FAST)
    got1, got2 = Inbox(), Inbox()
    web1.subscribe("*", got1)
    web2.subscribe("*", got2)
    with web1, web2:
        sent = web1.publish("cache.invalidate", {"key": "products"})
        web2.publish("settings.changed", [1, 2])
        assert got2.wait(1)[0] == sent
        assert got1.wait(1)[0].data == [1, 2]
    assert sent.id == "web1:1" and sent.node == "web1" and sent.data == {"key": "products"}


def test_a_process_skips_its_own_events_but_its_node_siblings_do_not(target: str) -> None:
    worker1, worker2 = Bus(target, node="web1", **FAST), Bus(target, node="web1", **FAST)
    own, sibling = Inbox(), Inbox()
    worker1.subscribe("*", own)
    worker2.subscribe("*", sibling)
    with worker1, worker2:
        worker1.publish("a.b")
        assert sibling.wait(1)[0].origin == worker1.origin
        worker2.publish("a.c")  # a later event, so the first one has surely been seen
        own.wait(1)
    assert own.ids == ["web1:2"]


def test_receive_own_delivers_a_process_its_own_events(target: str) -> None:
    bus = Bus(target, node="web1", receive_own=True, **FAST)
    inbox = Inbox()
    bus.subscribe("*", inbox)
    with bus:
        bus.publish("a.b", 1)
        assert inbox.wait(1)[0].data == 1


def test_subscribe_patterns_and_decorator(target: str) -> None:
    sender, receiver = Bus(target, node="a", **FAST), Bus(target, node="b", **FAST)
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


def test_follow_from_beginning_now_and_a_position(target: str) -> None:
    bus = Bus(target, node="web1", **FAST)
    bus.publish_many([("a.x", 1), ("b.x", 2), ("a.y", 3)])
    reader = Bus(target, node="reader", **FAST)
    everything = [e.data for e in reader.follow(start="beginning", timeout=0.3)]
    assert everything == [1, 2, 3]
    assert [e.data for e in reader.follow("a.*", start="beginning", timeout=0.3)] == [1, 3]
    assert [e.data for e in reader.follow(start={"web1": 2}, timeout=0.3)] == [3]
    assert list(reader.follow(start="now", timeout=0.3)) == []


def test_durable_consumer_resumes_after_stop(target: str) -> None:
    publisher = Bus(target, node="pub")
    publisher.publish("before.creation")
    consumer = Bus(target, node="sub", consumer="indexer", **FAST)
    publisher.publish("after.creation.before.start")  # must not be missed
    inbox = Inbox()
    consumer.subscribe("*", inbox)
    with consumer:
        assert inbox.wait(1)[0].topic == "after.creation.before.start"
    publisher.publish_many([("while.stopped", 1), ("while.stopped", 2)])
    again = Bus(target, node="sub", consumer="indexer", **FAST)
    later = Inbox()
    again.subscribe("*", later)
    with again:
        assert [e.seq for e in later.wait(2)] == [3, 4]


def test_a_durable_consumer_runs_in_one_process_at_a_time(target: str) -> None:
    with (
        Bus(target, node="sub", consumer="indexer", **FAST),
        pytest.raises(ConsumerBusyError, match="in use by another process"),
    ):
        Bus(target, node="sub", consumer="indexer", **FAST)
    Bus(target, node="sub", consumer="indexer", **FAST).close()  # free again once stopped


def test_failing_handler_is_retried_then_recorded_and_the_consumer_moves_on(target: str) -> None:
    publisher = Bus(target, node="pub")
    consumer = Bus(target, node="sub", consumer="c1", handler_retries=2, **FAST)
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


def test_delivery_without_the_watcher(target: str) -> None:
    publisher = Bus(target, node="pub")
    publisher.publish("t", 0)  # a known stream: polled by name every poll_interval
    follower = Bus(target, node="sub", watch=False, poll_interval=0.1, scan_interval=3600)
    inbox = Inbox()
    follower.subscribe("*", inbox)
    with follower:
        publisher.publish("t", 1)
        assert inbox.wait(1, timeout=5)[0].data == 1


def test_a_new_node_is_discovered_by_the_scan_without_the_watcher(target: str) -> None:
    follower = Bus(target, node="sub", watch=False, poll_interval=0.1, scan_interval=0.2)
    inbox = Inbox()
    follower.subscribe("*", inbox)
    with follower:
        Bus(target, node="newcomer").publish_many([("t", 1), ("t", 2)])
        assert [e.id for e in inbox.wait(2, timeout=5)] == ["newcomer:1", "newcomer:2"]


def test_bad_options_are_refused() -> None:
    with pytest.raises(InvalidEventError, match="invalid node name"):
        Bus("/tmp/unused", node="../etc")
    with pytest.raises(ValueError, match="poll_interval must be > 0"):
        Bus("/tmp/unused", node="a", poll_interval=0)


def test_two_machines_claiming_one_node_name(target: str, tmp_path: Path) -> None:
    first = Bus(target, node="web1", state_dir=tmp_path / "machine1")
    first.publish("t", "mine")
    second = Bus(target, node="web1", state_dir=tmp_path / "machine2")
    with pytest.raises(NodeConflictError, match="in use by another machine"):
        second.publish("t", "theirs")
    with pytest.raises(NodeConflictError):
        second.start()
    everything = Bus(target, node="reader").follow(start="beginning", timeout=0.3)
    assert [e.data for e in everything] == ["mine"]


def test_concurrent_starts_make_one_follower(target: str) -> None:
    import threading

    bus = Bus(target, node="web1", **FAST)
    gate = threading.Barrier(8)

    def start() -> None:
        gate.wait()
        bus.start()

    starters = [threading.Thread(target=start) for _ in range(8)]
    for t in starters:
        t.start()
    for t in starters:
        t.join()
    followers = [t for t in threading.enumerate() if t.name == "fsevents-web1"]
    assert len(followers) == 1, "a threaded worker's first requests start the Bus once"
    bus.close()


def test_no_create_refuses_a_missing_root_and_writes_nothing(target: str) -> None:
    with pytest.raises(RootError, match="is not an fsevents root yet"):
        Bus(target, node="web1", create=False)
    assert not os.path.exists(target), "nothing was created"
    Bus(target, node="web1").publish("t", 1)  # created once, deliberately
    again = Bus(target, node="web1", create=False)
    assert again.publish("t", 2).seq == 2
    again.close()
