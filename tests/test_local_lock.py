"""The node's local sequence lock: processes, threads and forked children of one node
publish into one stream without two events ever getting the same seq."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from procs import start_worker

from fsevents import Bus
from fsevents.stores.files import FilesStore


def _seqs(root: Path, node: str) -> list[int]:
    store = FilesStore(root)
    return sorted(s for seg in store.segments(node) for s in store.seqs_in_segment(node, seg))


def test_processes_and_threads_of_one_node_share_its_stream(root: Path, tmp_path: Path) -> None:
    Bus(root, node="web1").publish("warm.up")
    go = tmp_path / "go"
    workers = [
        start_worker("publish", str(root), "web1", "40", "--start-file", str(go)) for _ in range(3)
    ]
    bus = Bus(root, node="web1")
    threads = [
        threading.Thread(target=lambda: [bus.publish("t.e", i) for i in range(40)])
        for _ in range(2)
    ]
    go.touch()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [w.wait(60) for w in workers] == [0, 0, 0]
    assert _seqs(root, "web1") == list(range(1, 1 + 1 + 5 * 40))


def test_a_forked_child_takes_its_own_lock(root: Path) -> None:
    bus = Bus(root, node="web1")
    bus.publish("before.fork")  # the parent has opened (and used) the lock
    lock = bus.store.local.lock("stream-web1")
    with lock:
        pid = os.fork()
        if pid == 0:  # the child: must block on the parent's lock, not share it
            try:
                acquired = threading.Event()
                threading.Thread(target=lambda: (lock.__enter__(), acquired.set())).start()
                os._exit(0 if not acquired.wait(0.5) else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    bus.publish("after.fork")
    assert _seqs(root, "web1") == [1, 2]
