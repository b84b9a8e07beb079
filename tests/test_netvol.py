"""fsevents on a real network file system: one node per sshfs mount, separate processes.

Each node is a set of processes with its own state dir (its machine) and its own mount of
the shared directory, so their writes reach each other the way they reach another host:
by name at once, in listings only after sshfs's directory cache (~20 s), never through the
other node's file watcher. Run with ``-s`` to see the measured numbers.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Inbox
from netfs import SharedDirs
from procs import (
    doctor_peers,
    doctor_peers_results,
    fsevents_cli,
    read_acks,
    read_records,
    start_worker,
    wait_for,
    wait_lines,
)

from fsevents import Bus, Event, FilesStore, Gap

POLL = 0.5  # poll_interval of the followers here: the cross-mount path is polling only


class Farm:
    """Node ``node-a`` on mount A and ``node-b`` on mount B, each with its own state dir."""

    def __init__(self, dirs: SharedDirs, tmp: Path, clock_offsets: dict[str, int] | None = None):
        self.roots = {"a": dirs.a, "b": dirs.b}
        self.tmp = tmp
        self.offsets = clock_offsets or {}
        self.procs: list[subprocess.Popen[bytes]] = []

    def env(self, n: str) -> dict[str, str]:
        env = {"FSEVENTS_STATE_DIR": str(self.tmp / f"state-{n}")}
        if n in self.offsets:
            env["FSEVENTS_TEST_CLOCK_OFFSET"] = str(self.offsets[n])
        return env

    def worker(self, role: str, n: str, *args: str) -> subprocess.Popen[bytes]:
        proc = start_worker(role, str(self.roots[n]), f"node-{n}", *args, env=self.env(n))
        self.procs.append(proc)
        return proc

    def follower(self, n: str, out: Path, *args: str) -> subprocess.Popen[bytes]:
        ready = self.tmp / f"ready-{n}-{len(self.procs)}"
        proc = self.worker("follow", n, str(out), "--ready", str(ready),
                           "--poll-interval", str(POLL), *args)  # fmt: skip
        wait_for(ready.exists, 30, what=f"follower on mount {n} to start")
        return proc

    def publish_hello(self) -> list[str]:
        """Each node's first event, so that followers can name both streams from the start."""
        ids = []
        for n in ("a", "b"):
            acks = self.tmp / f"hello-{n}"
            assert self.worker("publish", n, "1", "--acks", str(acks)).wait(30) == 0
            ids += read_acks(acks)
        return ids

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


@pytest.fixture
def farm(shared_dirs: SharedDirs, tmp_path: Path) -> Iterator[Farm]:
    f = Farm(shared_dirs, tmp_path)
    yield f
    f.stop()


BOTH_FROM_THE_START = json.dumps({"node-a": 0, "node-b": 0})


def _by_stream(records: list[dict[str, Any]]) -> dict[tuple[int, str], list[int]]:
    """Seqs received, per receiving process and stream, in the order received."""
    seen: dict[tuple[int, str], list[int]] = defaultdict(list)
    for r in records:
        seen[(r["pid"], r["stream"])].append(r["seq"])
    return seen


def test_events_flow_both_ways_by_name_within_the_poll_interval(farm: Farm, tmp_path: Path) -> None:
    farm.publish_hello()
    outs = {n: tmp_path / f"out-{n}" for n in "ab"}
    known = json.dumps({"node-a": 1, "node-b": 1})
    followers = [farm.follower(n, outs[n], "--start", known, "--expected", "10") for n in "ab"]
    for n in "ab":
        farm.worker("publish", n, "5", "--interval", "0.3")
    assert [f.wait(60) for f in followers] == [0, 0]
    worst = 0.0
    for n, other in (("a", "node-b"), ("b", "node-a")):
        records = read_records(outs[n])
        assert sorted(r["id"] for r in records) == sorted(
            f"node-{m}:{s}" for m in "ab" for s in range(2, 7)
        )
        crossing = [r["received"] - r["time"] for r in records if r["stream"] == other]
        worst = max(worst, *crossing)
    print(f"\nworst latency across mounts: {worst * 1000:.0f} ms (poll_interval {POLL} s)")
    assert worst <= POLL + 0.5


def test_sigkill_of_publishers_and_consumers_loses_nothing_acknowledged(
    farm: Farm, tmp_path: Path
) -> None:
    acked = farm.publish_hello()
    outs = {n: tmp_path / f"out-{n}" for n in "ab"}
    acks = {n: tmp_path / f"acks-{n}" for n in "ab"}

    def consumer(n: str) -> subprocess.Popen[bytes]:
        return farm.follower(n, outs[n], "--consumer", "indexer", "--start", BOTH_FROM_THE_START)

    consumers = {n: consumer(n) for n in "ab"}
    publishers = {n: farm.worker("publish", n, "100000", "--acks", str(acks[n])) for n in "ab"}
    for n in "ab":
        wait_lines(acks[n], 20, 60)
        publishers[n].send_signal(signal.SIGKILL)  # mid-publish, between fsyncs or links
    for n in "ab":
        wait_lines(outs[n], 10, 60)
        consumers[n].send_signal(signal.SIGKILL)  # mid-batch: its cursor may lag behind
    for n in "ab":
        publishers[n].wait(10)
        consumers[n].wait(10)
        consumers[n] = consumer(n)
        publishers[n] = farm.worker("publish", n, "30", "--acks", str(acks[n]))
    assert [publishers[n].wait(60) for n in "ab"] == [0, 0]
    acked += read_acks(acks["a"]) + read_acks(acks["b"])

    for n in "ab":
        wait_for(lambda n=n: set(acked) <= {r["id"] for r in read_records(outs[n])}, 60,
                 what=f"every acknowledged event at the consumer on mount {n}")  # fmt: skip
        for seqs in _by_stream(read_records(outs[n])).values():
            assert seqs == sorted(set(seqs)), "each process receives each writer in order"
    print(f"\n{len(acked)} acknowledged events, all received on both mounts after SIGKILLs")


def test_nodes_ten_minutes_apart_lose_nothing_and_keep_per_writer_order(
    shared_dirs: SharedDirs, tmp_path: Path
) -> None:
    farm = Farm(shared_dirs, tmp_path, clock_offsets={"a": +600, "b": -600})
    try:
        farm.publish_hello()
        outs = {n: tmp_path / f"out-{n}" for n in "ab"}
        # Both prune every 0.2 s with a 5-minute retention: judged by its own clock, node-a
        # would find node-b's events 20 minutes old; only the volume's clock is trusted.
        consumers = [
            farm.follower(n, outs[n], "--consumer", "indexer", "--start", BOTH_FROM_THE_START,
                          "--expected", "62", "--retention-age", "300",
                          "--prune-interval", "0.2", "--scan-interval", "0.5")
            for n in "ab"
        ]  # fmt: skip
        for n in "ab":
            farm.worker("publish", n, "30", "--interval", "0.01")
        assert [c.wait(90) for c in consumers] == [0, 0]
        for n in "ab":
            records = read_records(outs[n])
            for m in "ab":
                seqs = [r["seq"] for r in records if r["stream"] == f"node-{m}"]
                assert seqs == list(range(1, 32)), f"node-{m} as received on mount {n}"
            skew = {r["stream"]: r["time"] - r["received"] for r in records}
            assert skew["node-a"] - skew["node-b"] > 1100, "the clocks really were apart"
        status = json.loads(
            fsevents_cli("status", "--root", str(shared_dirs.a), "--json", env=farm.env("a")).stdout
        )
        counts = {s["stream"]: (s["oldest"], s["events"]) for s in status["streams"]}
        assert counts == {"node-a": (1, 31), "node-b": (1, 31)}, "nothing was pruned"
        for node in status["nodes"]:  # each consumer's last beat, written from its own clock
            (entry,) = [p for p in node["processes"] if p["consumer"] == "indexer"]
            assert (entry["lag"], entry["counters"].get("gaps", 0)) == (0, 0)
        ages = {n["node"]: n["age"] for n in status["nodes"]}
        assert ages["node-a"] < -500 < 500 < ages["node-b"], "status shows the skew as it is"
    finally:
        farm.stop()


def test_pruning_through_one_mount_while_the_other_reads_is_a_gap_not_a_loss(
    shared_dirs: SharedDirs, tmp_path: Path
) -> None:
    writer = Bus(shared_dirs.a, node="node-a", state_dir=tmp_path / "state-a")
    writer.publish_many([("t", i) for i in range(300)])
    pruned = threading.Event()
    inbox, gaps = Inbox(), list[Gap]()

    def slow_reader(event: Event) -> None:
        inbox(event)
        if len(inbox.events) == 10:  # node-a prunes while this reader is at event 10
            pruned.wait(30)

    reader = Bus(shared_dirs.b, node="node-b", state_dir=tmp_path / "state-b",
                 start={"node-a": 0}, batch_size=5, poll_interval=0.1, scan_interval=0.2,
                 on_gap=gaps.append)  # fmt: skip
    reader.subscribe("*", slow_reader)
    with reader:
        inbox.wait(10, 30)
        done = fsevents_cli("prune", "--root", str(shared_dirs.a), "--node", "node-a",
                            "--retention-count", "20", "--json",
                            env={"FSEVENTS_STATE_DIR": str(tmp_path / "state-a")})  # fmt: skip
        pruned.set()
        assert json.loads(done.stdout)["removed"]["node-a"] >= 270, done.stderr
        wait_for(lambda: inbox.events[-1].seq == 300, 30, what="the reader to reach seq 300")
        stats = reader.stats()
    seqs = [e.seq for e in inbox.events]
    assert seqs == sorted(set(seqs)), "in order, no duplicates"
    assert len(gaps) == 1 and stats["gaps"] == 1 and stats.get("holes", 0) == 0
    gap: Gap = gaps[0]
    assert set(seqs) | set(range(gap.first_missing, gap.resumed_at)) == set(range(1, 301))
    assert gap.resumed_at <= 281, "everything retained after the gap is delivered"
    writer.close()


@pytest.mark.slow
def test_a_new_nodes_stream_is_discovered_within_the_listing_cache_doctor_measures(
    farm: Farm, tmp_path: Path
) -> None:
    scan = 1.0
    out = tmp_path / "out-b"
    acks = tmp_path / "hello-b"
    assert farm.worker("publish", "b", "1", "--acks", str(acks)).wait(30) == 0
    # Listing streams/ at start and at every scan: mount B caches that listing from now on.
    follower = farm.follower("b", out, "--expected", "1", "--scan-interval", str(scan))
    peers = doctor_peers(farm.roots["a"] / "probe", farm.roots["b"] / "probe")
    assert farm.worker("publish", "a", "1").wait(30) == 0  # node-a's first event: new stream
    assert follower.wait(90) == 0
    (record,) = read_records(out)
    discovery = record["received"] - record["time"]
    measured = [checks["peer-listing"]["details"]["listing_lag_seconds"]
                for checks in doctor_peers_results(peers)]  # fmt: skip
    print(f"\nnew node discovered after {discovery:.1f} s; doctor --peer measured listings "
          f"{measured[0]:.1f} s / {measured[1]:.1f} s behind names")  # fmt: skip
    assert record["id"] == "node-a:1"
    assert all(5 < lag < 60 for lag in measured), "sshfs's default listing cache is ~20 s"
    assert discovery <= max(measured) + scan + 2.0


def test_stat_of_a_file_removed_elsewhere_lags_but_open_does_not(shared_dirs: SharedDirs) -> None:
    """Why existence is tested by opening (fsevents._fs.visible), never by stat."""
    from fsevents._fs import visible

    (shared_dirs.a / "f").write_text("x")
    assert (shared_dirs.b / "f").exists() and visible(shared_dirs.b / "f")
    (shared_dirs.a / "f").unlink()
    t0 = time.monotonic()
    assert not visible(shared_dirs.b / "f")
    assert time.monotonic() - t0 < 1.0
    print(f"\nafter removal through mount A, stat via B still says it exists: "
          f"{(shared_dirs.b / 'f').exists()}")  # fmt: skip


def test_a_rewritten_heartbeat_reads_whole_through_another_mount(
    shared_dirs: SharedDirs, tmp_path: Path
) -> None:
    writer = FilesStore(shared_dirs.a, state_dir=tmp_path / "state-a")
    reader = FilesStore(shared_dirs.b, state_dir=tmp_path / "state-b")
    writer.write_heartbeat("node-a", {"processes": {}})
    assert reader.read_heartbeat("node-a") == {"processes": {}}
    (shared_dirs.b / "nodes" / "node-a.json").stat()  # mount B caches the file's size now
    grown = {"processes": {f"bus:{i}": {"position": {"node-b": i}} for i in range(40)}}
    writer.write_heartbeat("node-a", grown)
    assert reader.read_heartbeat("node-a") == grown
