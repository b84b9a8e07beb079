"""The store contract, for every store (``target`` is parametrised in conftest.STORES).

With test_bus.py (the Bus API) and test_processes.py (crashes, many writers and readers),
this is what a new store must pass: retention and gaps, bad input, the watcher, the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Inbox
from procs import fsevents_cli, wait_for

from fsevents import Bus, InvalidEventError
from fsevents.retention import Retention
from fsevents.stores import FilesStore, Gap, SqliteStore, Store, open_store, store_class

FAST = {"poll_interval": 0.05, "scan_interval": 0.1}


def test_a_target_string_names_its_store(tmp_path: Path) -> None:
    for target in ("events.db", "x/EVENTS.sqlite", "e.sqlite3", "sqlite:///tmp/e", "sqlite:e.db"):
        assert store_class(target) is SqliteStore, target
    for target in ("events", "/srv/shared/events.d", "db"):
        assert store_class(target) is FilesStore, target
    assert isinstance(open_store(tmp_path / "plain-dir"), FilesStore)


def _prune(store: Store, *, age: float | None, count: int | None, now: float = 1e12) -> int:
    report = store.prune("pub", Retention(age, count), now=now)
    return sum(report.removed.values())


def test_prune_by_count_keeps_the_newest_and_a_reader_behind_gets_a_gap(target: str) -> None:
    writer = Bus(target, node="pub")
    writer.publish_many([("t", i) for i in range(10)])
    gaps: list[Gap] = []
    follower = Bus(target, node="sub", start="beginning", on_gap=gaps.append, **FAST)
    assert _prune(writer.store, age=None, count=4) == 6
    inbox = Inbox()
    follower.subscribe("*", inbox)
    with follower:
        assert [e.data for e in inbox.wait(4)] == [6, 7, 8, 9]
        assert follower.stats()["gaps"] == 1
    assert len(gaps) == 1
    assert "removed by retention" in str(gaps[0])
    later = Bus(target, node="late").follow(start="beginning", timeout=0.3)
    assert [e.data for e in later] == [6, 7, 8, 9], "beginning = the oldest retained event"
    assert writer.publish("t", 10).id == "pub:11", "pruning never reuses a seq"
    writer.close()


def test_prune_by_age_uses_the_event_time(target: str) -> None:
    now = [0.0]
    writer = Bus(target, node="pub", clock=lambda: now[0])
    for now[0] in (100.0, 200.0, 300.0):
        writer.publish("t")
    assert _prune(writer.store, age=150, count=None, now=320.0) == 1
    assert _prune(writer.store, age=None, count=None) == 0
    remaining = Bus(target, node="r").follow(start="beginning", timeout=0.3)
    assert [e.time for e in remaining] == [200.0, 300.0]
    writer.close()


def test_an_oversized_event_fails_the_whole_batch_before_anything_is_written(target: str) -> None:
    bus = Bus(target, node="pub", max_event_size=1000)
    with pytest.raises(InvalidEventError, match="over the 1000-byte limit"):
        bus.publish_many([("t", "small"), ("t", "x" * 2000)])
    assert bus.publish("t", "after").id == "pub:1"
    reader = Bus(target, node="reader").follow(start="beginning", timeout=0.3)
    assert [e.data for e in reader] == ["after"]
    bus.close()


def test_the_watcher_alone_wakes_a_follower_on_this_host(target: str) -> None:
    publisher = Bus(target, node="pub")
    publisher.publish("t", 0)  # a known stream, so no scan is involved
    # A poll interval far beyond the deadline: only the file watcher can deliver in time.
    follower = Bus(target, node="sub", poll_interval=60, scan_interval=60)
    inbox = Inbox()
    follower.subscribe("*", inbox)
    with follower:
        # The heartbeat comes after the first poll: from here on the follower is waiting.
        wait_for(lambda: publisher.store.read_heartbeat("sub") is not None, 10)
        publisher.publish("t", 1)
        assert inbox.wait(1, timeout=5)[0].data == 1
    publisher.close()


def test_cli_round_trip_through_the_environment(target: str) -> None:
    env = {"FSEVENTS_ROOT": target, "FSEVENTS_NODE": "cli"}
    fsevents_cli("publish", "before.tail", env=env)  # creates the target
    tail = subprocess.Popen(
        [sys.executable, "-m", "fsevents", "tail", "--json", "--count", "2", "--timeout", "60"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stderr is not None
        assert "following" in tail.stderr.readline()  # printed once the tail is at "now"
        published = fsevents_cli("publish", "cache.invalidate", '{"key": "products"}', env=env)
        assert published.returncode == 0, published.stderr
        assert published.stdout.strip() == "cli:2"
        assert fsevents_cli("publish", "x.y", "[1]", env=env).returncode == 0
        out, err = tail.communicate(timeout=60)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait(10)
    assert tail.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(e["id"], e["data"]) for e in lines] == [("cli:2", {"key": "products"}), ("cli:3", [1])]
    resumed = fsevents_cli(
        "tail", "--from", "beginning", "--count", "3", "--timeout", "30", env=env
    )
    assert resumed.returncode == 0 and resumed.stdout.count("\n") == 3


def test_cli_reports_bad_input_in_one_line(target: str) -> None:
    env = {"FSEVENTS_ROOT": target}
    bad = fsevents_cli("publish", "bad topic!", env=env)
    assert bad.returncode == 2 and "invalid topic" in bad.stderr and "Traceback" not in bad.stderr


def test_durable_cursor_files_hold_the_stores_position(target: str) -> None:
    Bus(target, node="pub").publish("t")
    consumer = Bus(target, node="sub", consumer="c", start="beginning", **FAST)
    inbox = Inbox()
    consumer.subscribe("*", inbox)
    with consumer:
        inbox.wait(1)
        wait_for(lambda: consumer.store.local.cursor("c").load() == consumer.position, 5)
    assert consumer.position, "a position the Bus, cursors and follow(start=...) all accept"
    again = Bus(target, node="sub2")
    assert list(again.follow(start=consumer.position, timeout=0.3)) == []


@pytest.mark.parametrize(
    "topic, data, match",
    [
        ("bad topic", None, "invalid topic"),
        ("ok", {"x": {1, 2}}, "not JSON-serialisable"),
        ("ok", "x" * 2_000_000, "over the 1048576-byte limit"),
    ],
)
def test_bad_input_raises_before_anything_is_written(
    target: str, topic: str, data: object, match: str
) -> None:
    bus = Bus(target, node="web1")
    with pytest.raises(InvalidEventError, match=match):
        bus.publish(topic, data)
    assert list(Bus(target, node="reader").follow(start="beginning", timeout=0.2)) == []
    assert bus.publish("ok").id == "web1:1"
    bus.close()


def test_lost_local_state_resumes_from_the_stream(target: str, tmp_path: Path) -> None:
    Bus(target, node="web1", state_dir=tmp_path / "old").publish_many([("t", 1), ("t", 2)])
    # same machine, state dir wiped: the node's own heartbeat names another machine id now,
    # so the new state must come from the stream without a conflict when the claim expired
    store = open_store(target, state_dir=tmp_path / "new")
    beat = store.read_heartbeat("web1")
    assert beat is not None
    store.write_heartbeat("web1", {**beat, "last_seen": 0})
    event = Bus(store=store, node="web1").publish("t", 3)
    assert event.seq == 3
    store.close()
