"""Signals: replicated cache invalidation, in one process and across real processes."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import cachetools
import pytest
from procs import start_worker, wait_for, wait_lines

import fsevents
from fsevents import Bus, InvalidEventError, Signals, signal_key


def test_signal_key_is_stable_content_not_identity() -> None:
    assert signal_key("user:1") == "user:1"
    assert signal_key(("user", 1)) == signal_key(["user", 1]) == '["user",1]'
    assert signal_key({"b": 1, "a": (2, None)}) == '{"a":[2,null],"b":1}'
    assert signal_key(frozenset({"y", "x"})) == '["x","y"]'
    assert signal_key(cachetools.keys.hashkey("page", 3)) == '["page",3]'
    with pytest.raises(InvalidEventError, match="stable string"):
        signal_key(object())


def test_signal_key_is_the_same_in_every_python_process() -> None:
    # Hash randomisation changes set order and hash() between runs; the key must not change.
    code = "import fsevents; print(fsevents.signal_key(({'k', 'j', 'i'}, {'z': 1.5, 'a': [True]})))"
    keys = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(keys) == 1


@pytest.fixture
def pair(root: Path) -> Any:
    """Two Buses in this process: each one's events reach the other (distinct origins)."""
    sender = Bus(root, node="a", poll_interval=0.05)
    receiver = Bus(root, node="b", poll_interval=0.05)
    yield Signals(sender), Signals(receiver)
    sender.close()
    receiver.close()


class DjangoStyleCache:
    def __init__(self) -> None:
        self.data = {"page:1": "old", "page:2": "kept"}

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def clear(self) -> None:
        self.data.clear()


def test_trigger_evicts_the_key_from_every_kind_of_attached_cache(pair: Any) -> None:
    sender, receiver = pair
    plain = receiver.attach({"page:1": "old", "page:2": "kept"})
    ttl = receiver.attach(cachetools.TTLCache(maxsize=10, ttl=600), lock=threading.Lock())
    ttl.update({"page:1": "old", "page:2": "kept"})
    structured = receiver.attach({("page", 1): "old", ("page", 2): "kept"})
    django = receiver.attach(DjangoStyleCache())
    calls: list[int] = []

    @receiver.attach
    @functools.lru_cache(maxsize=128)
    def expensive(n: int) -> int:
        calls.append(n)
        return n

    expensive(1)
    receiver.bus.start()
    sender.trigger("page:1")
    sender.trigger(("page", 1))
    wait_for(lambda: receiver.counters["received"] == 2, 10, 0.01, "two signals received")
    assert plain == {"page:2": "kept"} and dict(ttl) == {"page:2": "kept"}
    assert structured == {("page", 2): "kept"}
    assert django.data == {"page:2": "kept"}
    expensive(1)
    assert calls == [1, 1]  # an lru_cache cannot drop one key: it was cleared


def test_trigger_runs_local_callbacks_at_once_and_remote_ones_on_the_follower(pair: Any) -> None:
    sender, receiver = pair
    local: list[str] = []
    remote: list[tuple[str, str]] = []
    sender.on("settings", local.append)
    receiver.on(("user", 7), lambda key: remote.append(("user", key)))
    receiver.on_any(lambda key: remote.append(("any", key)))
    receiver.bus.start()
    sender.trigger("settings")
    assert local == ["settings"]  # before trigger() returned, without a follower
    sender.trigger(("user", 7))
    wait_for(lambda: len(remote) == 3, 10, 0.01, "three remote callbacks")
    assert remote == [("any", "settings"), ("user", '["user",7]'), ("any", '["user",7]')]


def test_a_broken_cache_does_not_keep_the_others_stale(pair: Any) -> None:
    sender, receiver = pair

    class Broken:
        def pop(self, key: str, default: object = None) -> None:
            raise RuntimeError("cache backend down")

    receiver.attach(Broken())
    healthy = receiver.attach({"k": 1})
    receiver.bus.start()
    sender.trigger("k")
    wait_for(lambda: not healthy, 10, 0.01, "the healthy cache evicted")
    assert receiver.counters["callback_errors"] == 1


def test_attach_refuses_what_it_cannot_evict_from(pair: Any) -> None:
    with pytest.raises(TypeError, match="cannot attach"):
        pair[1].attach(42)


def test_a_gap_clears_every_attached_cache(root: Path) -> None:
    with Bus(root, node="a") as writer:
        events = [writer.publish("fsevents.signal", {"key": f"k{i}"}) for i in range(3)]
    store = fsevents.FilesStore(root)
    for event in events[:2]:  # retention removed them before the late reader saw them
        store.event_path(event.stream, event.seq).unlink()
    late = Bus(root, node="b", start={"a": 0}, poll_interval=0.05, scan_interval=0.1)
    signals = Signals(late)
    cache = signals.attach({"unrelated": 1, "k0": 2})
    resets: list[bool] = []
    signals.on_reset(lambda: resets.append(True))
    with late:
        wait_for(lambda: resets, 10, 0.01, "the gap reset")
    assert cache == {} and signals.counters["resets"] == 1


def test_malformed_signal_events_are_skipped(pair: Any) -> None:
    sender, receiver = pair
    seen: list[str] = []
    receiver.on_any(seen.append)
    receiver.bus.start()
    sender.bus.publish("fsevents.signal", ["not", "a", "dict"])
    sender.trigger("after")
    wait_for(lambda: seen == ["after"], 10, 0.01, "the valid signal")
    assert receiver.counters["malformed"] == 1


def test_every_other_process_evicts_including_workers_of_the_same_node(tmp_path: Path) -> None:
    """Real processes: two workers of node n1 and one of n2; one n1 worker triggers."""
    root, go = tmp_path / "shared", tmp_path / "go"
    outs = [tmp_path / f"w{i}.out" for i in range(3)]
    readies = [tmp_path / f"w{i}.ready" for i in range(3)]
    nodes = ["n1", "n1", "n2"]
    procs = [
        start_worker(
            "signals", str(root), node, str(out), "--ready", str(ready), "--expected", "2",
            *(["--trigger-after", str(go)] if i == 0 else []),
        )
        for i, (node, out, ready) in enumerate(zip(nodes, outs, readies, strict=True))
    ]  # fmt: skip
    try:
        wait_for(lambda: all(r.exists() for r in readies), 30, 0.02, "workers ready")
        go.write_text("go")
        with Bus(root, node="admin") as admin:
            Signals(admin).trigger(("user", 42))
        for out in outs:  # w0 ran its own trigger locally, the others received it
            assert sorted(wait_lines(out, 2, 10)) == ['["user",42]', "from-w0"]
        for proc in procs:
            assert proc.wait(30) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
