"""What only the SQLite store has: transactions, its file format, targets, forks, WAL rules."""

from __future__ import annotations

import logging
import os
import random
import signal
import sqlite3
from pathlib import Path

import pytest
from helpers import Inbox
from netfs import SharedDirs
from procs import fsevents_cli, read_acks, start_worker, wait_for

from fsevents import Bus
from fsevents.errors import RootError
from fsevents.stores import SqliteStore
from fsevents.stores.sqlite import POSITION_KEY

FAST = {"poll_interval": 0.05, "scan_interval": 0.1}
BATCH = 200


def test_a_sigkilled_writer_mid_transaction_leaves_a_sound_database(tmp_path: Path) -> None:
    db, acks = tmp_path / "events.db", tmp_path / "acks"
    rng = random.Random(7)
    for _ in range(8):
        # Batches of 200 in one transaction each: ~40% of the writer's time is inside one
        # (measured), so 8 kills all miss a transaction with a probability under 2%.
        writer = start_worker("publish", str(db), "pub", "1000000", "--batch", str(BATCH),
                              "--acks", str(acks))  # fmt: skip
        goal = len(read_acks(acks)) + BATCH * rng.randint(1, 20)
        wait_for(lambda g=goal, w=writer: len(read_acks(acks)) >= g or w.poll() is not None, 60)
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = [f"pub:{n}" for (n,) in conn.execute("SELECT stream_seq FROM events")]
    conn.close()
    assert set(read_acks(acks)) <= set(stored), "a committed (acknowledged) event was lost"
    assert len(stored) % BATCH == 0, "a transaction was half applied"
    assert stored == [f"pub:{n}" for n in range(1, len(stored) + 1)], "ids stay contiguous"


def test_hostile_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    bus = Bus(db, node="pub")
    bus.publish("t", "first")
    rows = [
        ("x", 1, "t", 1.0, "x", "o", "{not json"),
        ("../etc", 1, "t", 1.0, "n", "o", "null"),
        ("y", 1, "bad topic!", 1.0, "n", "o", "null"),
        ("z", 1, "t", 1.0, "n", "o", '"' + "x" * 2_000_000 + '"'),
    ]
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO events(stream, stream_seq, topic, time, node, origin, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    conn.close()
    bus.publish("t", "last")
    reader = bus.store.reader({POSITION_KEY: 0}, hole_timeout=0, scan_interval=1)
    assert [e.data for e in reader.poll(100)] == ["first", "last"]
    assert reader.counters["skipped"] == 4
    bus.close()


def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    bus = Bus(db, node="web1")  # created before the fork, as a pre-fork server does
    bus.publish("t", "parent")
    parent_conn = bus.store.db.get()  # type: ignore[attr-defined]
    pid = os.fork()
    if pid == 0:  # the child: publish through the inherited Bus, report by exit status
        try:
            ok = bus.store.db.get() is not parent_conn  # type: ignore[attr-defined]
            bus.publish("t", "child")
            os._exit(0 if ok else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    bus.publish("t", "parent again")  # the parent's connection is still intact
    reader = Bus(db, node="reader").follow(start="beginning", timeout=0.3)
    assert [e.data for e in reader] == ["parent", "child", "parent again"]
    bus.close()


def test_the_position_is_one_integer_in_commit_order(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    a, b = Bus(db, node="a"), Bus(db, node="b")
    a.publish("t", 1)
    b.publish("t", 2)
    a.publish("t", 3)
    reader = Bus(db, node="r")
    assert reader.store.head() == {POSITION_KEY: 3}
    assert [e.id for e in reader.follow(start={POSITION_KEY: 1}, timeout=0.3)] == ["b:1", "a:2"]
    # A per-stream vector (files-store style) is understood too.
    assert [e.data for e in reader.follow(start={"a": 1}, timeout=0.3)] == [2, 3]
    assert [e.data for e in reader.follow(start={"a": 2, "b": 1}, timeout=0.3)] == []
    for bus in (a, b, reader):
        bus.close()


def test_an_idle_poll_costs_one_pragma(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "events.db")
    reader = store.reader(store.head(), hole_timeout=0, scan_interval=1)
    assert reader.poll(10) == []
    statements: list[str] = []
    store.db.get().set_trace_callback(statements.append)
    assert reader.poll(10) == []
    assert statements == ["PRAGMA data_version"]
    other = SqliteStore(tmp_path / "events.db")
    other.write_heartbeat("n", {})  # another connection commits: the next poll looks
    assert reader.poll(10) == [] and any("FROM events" in s for s in statements)
    store.close()
    other.close()


@pytest.mark.parametrize(
    ("target", "journal", "synchronous"),
    [
        ("events.db", "wal", "normal"),
        ("sqlite:{dir}/events.db?synchronous=full", "wal", "full"),
        ("sqlite:{dir}/e.sqlite3?journal_mode=delete", "delete", "normal"),
    ],
)
def test_targets_and_url_options(
    tmp_path: Path, target: str, journal: str, synchronous: str
) -> None:
    text = target.format(dir=tmp_path) if "{" in target else str(tmp_path / target)
    store = SqliteStore(text)
    conn = store.db.get()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == journal
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == {"normal": 1, "full": 2}[synchronous]
    store.close()


def test_fsync_false_means_synchronous_off(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "events.db", fsync=False)
    assert store.db.get().execute("PRAGMA synchronous").fetchone()[0] == 0
    store.close()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("sqlite://otherhost/events.db", "names a local file"),
        ("sqlite:{dir}/e.db?cache=shared", "unknown option"),
        ("sqlite:{dir}/e.db?journal_mode=memory", "journal_mode must be one of"),
        ("sqlite:{dir}/e.db?busy_timeout=soon", "busy_timeout must be a number"),
        ("sqlite:{dir}/e.db?busy_timeout=0", "busy_timeout must be a number"),
    ],
)
def test_bad_targets_are_refused(tmp_path: Path, target: str, message: str) -> None:
    with pytest.raises((RootError, ValueError), match=message):
        SqliteStore(target.format(dir=tmp_path))


def test_a_foreign_or_newer_database_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users(id)")
    conn.close()
    with pytest.raises(RootError, match="another application"):
        SqliteStore(foreign)
    newer = tmp_path / "newer.db"
    SqliteStore(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'format'")
    conn.close()
    with pytest.raises(RootError, match="declares format '2'"):
        SqliteStore(newer)
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(RootError, match="is a directory"):
        SqliteStore(tmp_path / "dir.db")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(RootError, match="cannot open"):
        SqliteStore(garbage)


def test_wal_is_refused_on_a_network_volume(shared_dirs: SharedDirs) -> None:
    target = shared_dirs.a / "events.db"
    with pytest.raises(RootError, match=r"network file system \(fuse.sshfs\).*files store"):
        SqliteStore(target)
    assert not target.exists(), "nothing is created before the refusal"
    cli = fsevents_cli("publish", "t", env={"FSEVENTS_ROOT": str(target)})
    assert cli.returncode == 2 and "WAL mode does not work there" in cli.stderr


def test_a_rollback_journal_runs_on_a_network_volume_when_asked(
    shared_dirs: SharedDirs, caplog: pytest.LogCaptureFixture
) -> None:
    target = f"sqlite://{shared_dirs.a}/events.db?journal_mode=delete"
    with caplog.at_level(logging.WARNING, "fsevents"):
        writer = Bus(target, node="web1")
    assert "network locks" in caplog.text
    reader = Bus(target, node="reader", **FAST)
    inbox = Inbox()
    reader.subscribe("*", inbox)
    with reader:
        writer.publish("t", "over sshfs")
        assert inbox.wait(1)[0].data == "over sshfs"
    writer.close()


@pytest.mark.parametrize(
    "options", ["synchronous=full", "journal_mode=delete", "synchronous=normal"]
)
def test_every_commit_wakes_a_watching_follower(tmp_path: Path, options: str) -> None:
    # The writes of a commit come before it is visible; only the doorbell rung after it
    # guarantees that a woken reader finds the event (the poll interval here is a minute).
    target = f"sqlite:{tmp_path}/events.db?{options}"
    publisher = Bus(target, node="pub")
    publisher.publish("t", -1)
    follower = Bus(target, node="sub", poll_interval=60, scan_interval=60)
    inbox = Inbox()
    follower.subscribe("*", inbox)
    with follower:
        wait_for(lambda: publisher.store.read_heartbeat("sub") is not None, 10)
        for i in range(30):
            publisher.publish("t", i)
            assert inbox.wait(i + 1, timeout=3)[-1].data == i
    publisher.close()
