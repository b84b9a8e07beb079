"""Guarantees across real processes: SIGKILL, many writers, many readers, one node's workers."""

from __future__ import annotations

import collections
import random
import signal
import subprocess
from pathlib import Path

from procs import read_acks, read_records, start_worker, wait_for, wait_lines

from fsevents import Bus
from fsevents.stores import open_store


def _start_follower(
    target: str, tmp_path: Path, name: str, *extra: str
) -> tuple[subprocess.Popen[bytes], Path]:
    out, ready = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.ready"
    proc = start_worker("follow", target, name, str(out), "--ready", str(ready), *extra)
    wait_for(lambda: ready.exists() or proc.poll() is not None, 30, what=f"{name} ready")
    assert proc.poll() is None, f"follower {name} exited with {proc.returncode}"
    return proc, out


def _stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _check_stream_order(records: list[dict[str, object]]) -> None:
    last: dict[object, int] = {}
    for record in records:
        seq = int(record["seq"])  # type: ignore[call-overload]
        assert seq > last.get(record["stream"], 0), f"out of order: {record}"
        last[record["stream"]] = seq


def test_sigkilled_publishers_leave_nothing_partial_and_lose_nothing_acknowledged(
    target: str, tmp_path: Path
) -> None:
    follower, out = _start_follower(target, tmp_path, "follower")
    acks = tmp_path / "acks"
    rng = random.Random(1234)
    try:
        for _ in range(5):
            publisher = start_worker("publish", target, "pub", "100000", "--acks", str(acks))
            goal = len(read_acks(acks)) + rng.randint(5, 150)
            wait_for(
                lambda g=goal, p=publisher: len(read_acks(acks)) >= g or p.poll() is not None, 60
            )
            publisher.send_signal(signal.SIGKILL)
            publisher.wait(10)
        acked = set(read_acks(acks))
        wait_for(
            lambda: acked <= {r["id"] for r in read_records(out)},
            30,
            what="every acknowledged event at the follower",
        )
    finally:
        _stop(follower)
    records = read_records(out)
    _check_stream_order(records)
    assert len({r["id"] for r in records}) == len(records), "an ephemeral follower saw a duplicate"
    # Every event file that is visible is whole: a reader never sees a partial event.
    reader = Bus(target, node="check")
    everything = list(reader.follow(start="beginning", timeout=0.5))
    assert acked <= {e.id for e in everything}
    assert reader.stats().get("skipped", 0) == 0


def test_a_sigkilled_durable_consumer_resumes_with_nothing_lost(
    target: str, tmp_path: Path
) -> None:
    out = tmp_path / "consumer.jsonl"
    args = ["--consumer", "indexer", "--batch-size", "20", "--handler-delay", "0.005"]

    def start() -> subprocess.Popen[bytes]:
        return start_worker("follow", target, "sub", str(out), *args)

    consumer = start()  # creating the consumer records its position before anything is sent
    with open_store(target) as store:
        wait_for(lambda: store.read_heartbeat("sub") is not None or consumer.poll(), 30)
    published = [e.id for e in Bus(target, node="pub").publish_many([("t", i) for i in range(300)])]
    try:
        for kill_at in (50, 150):
            wait_lines(out, kill_at, 60)
            consumer.send_signal(signal.SIGKILL)
            consumer.wait(10)
            consumer = start()
        wait_for(
            lambda: set(published) <= set(r["id"] for r in read_records(out)),
            60,
            what="every event at the durable consumer",
        )
    finally:
        _stop(consumer)
    ids = [r["id"] for r in read_records(out)]
    duplicates = sum(n - 1 for n in collections.Counter(ids).values())
    assert duplicates <= 2 * 20, "duplicates only for the batch being handled at each crash"


PUBLISHERS, EACH, FOLLOWERS = 4, 500, 2


def test_four_publishers_two_followers_each_get_all_exactly_once_in_order(
    target: str, tmp_path: Path
) -> None:
    total = PUBLISHERS * EACH
    followers = [
        _start_follower(target, tmp_path, f"f{n}", "--expected", str(total))
        for n in range(FOLLOWERS)
    ]
    go = tmp_path / "go"
    publishers = [
        start_worker("publish", target, f"p{n}", str(EACH), "--start-file", str(go))
        for n in range(PUBLISHERS)
    ]
    go.touch()
    try:
        for proc in publishers:
            assert proc.wait(120) == 0
        for proc, _ in followers:
            assert proc.wait(120) == 0, f"a follower did not receive all {total} events"
    finally:
        _stop(*publishers, *(p for p, _ in followers))
    for _, out in followers:
        records = read_records(out)
        assert len(records) == total and len({r["id"] for r in records}) == total
        _check_stream_order(records)
        per_stream = collections.defaultdict(list)
        for r in records:
            per_stream[r["stream"]].append(r["data"]["i"])
        assert len(per_stream) == PUBLISHERS
        assert all(v == list(range(EACH)) for v in per_stream.values())


def test_processes_of_one_node_share_its_stream_and_receive_each_other(
    target: str, tmp_path: Path
) -> None:
    sibling, out = _start_follower(target, tmp_path, "web1", "--expected", "200")
    go = tmp_path / "go"
    workers = [
        start_worker("publish", target, "web1", "100", "--start-file", str(go)) for _ in range(2)
    ]
    go.touch()
    try:
        assert all(w.wait(60) == 0 for w in workers)
        assert sibling.wait(60) == 0
    finally:
        _stop(*workers, sibling)
    seqs = sorted(r["seq"] for r in read_records(out))
    assert seqs == list(range(1, 201)), "one contiguous stream, no conflict between workers"
    assert {r["data"]["pid"] for r in read_records(out)} == {w.pid for w in workers}
