"""``status``: nodes from heartbeats (per-process entries), lag, counters, streams."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import Inbox, write_raw
from procs import fsevents_cli, wait_for

from fsevents import Bus, FilesStore
from fsevents.farm_status import collect, render

FAST = {"poll_interval": 0.05, "scan_interval": 0.1, "heartbeat_interval": 0.1}


def _process(doc: dict[str, object], node: str, role: str) -> dict[str, object]:
    for entry in next(n for n in doc["nodes"] if n["node"] == node)["processes"]:  # type: ignore[attr-defined, index]
        if entry["role"] == role:
            return entry  # type: ignore[no-any-return]
    raise AssertionError(f"no {role} process of {node} in {doc}")


def test_status_shows_every_process_of_a_node_with_its_lag_and_counters(root: Path) -> None:
    publisher = Bus(root, node="web1")
    publisher.publish_many([("t", i) for i in range(5)])
    store = FilesStore(root)
    write_raw(store, "web1", 6, content=b"{broken")
    publisher.publish("t", 6)  # seq 7: the reader skips 6 and counts it
    follower = Bus(root, node="web2", start="beginning", **FAST)
    consumer = Bus(root, node="web2", consumer="indexer", start="beginning", **FAST)
    inbox = Inbox()
    follower.subscribe("*", inbox)
    with follower:
        inbox.wait(6)
        consumer.start()
        consumer.stop()  # a durable consumer keeps its entry (and lag) while it is down
        wait_for(lambda: _process(collect(store), "web2", "follower")["lag"] == 0, 10, what="lag 0")
        doc = collect(store)
    web2 = next(n for n in doc["nodes"] if n["node"] == "web2")
    assert len(web2["processes"]) == 2, "two processes of one node: two entries"
    assert web2["counters"]["skipped"] >= 1
    assert isinstance(_process(doc, "web2", "consumer")["lag"], int)
    assert _process(doc, "web1", "publisher")["lag"] is None
    assert doc["streams"] == [
        {
            "stream": "web1",
            "events": 7,
            "oldest": 1,
            "newest": 7,
            "bytes": doc["streams"][0]["bytes"],
        }
    ]
    table = render(doc)
    assert "consumer indexer" in table and "web1" in table and "STREAM" in table


def test_a_stopped_follower_leaves_and_a_stopped_consumer_stays(root: Path) -> None:
    Bus(root, node="web1").publish_many([("t", 1), ("t", 2), ("t", 3)])
    follower = Bus(root, node="web2", **FAST)
    consumer = Bus(root, node="web2", consumer="mailer", start={"web1": 1}, **FAST)
    with follower:
        pass
    consumer.start()
    wait_for(lambda: consumer.position == {"web1": 3}, 10, what="the consumer to catch up")
    consumer.close()
    doc = collect(FilesStore(root))
    roles = [p["role"] for p in next(n for n in doc["nodes"] if n["node"] == "web2")["processes"]]
    assert roles == ["consumer"]
    assert _process(doc, "web2", "consumer")["lag"] == 0


def test_status_command_table_and_json(root: Path) -> None:
    Bus(root, node="web1").publish("t")
    table = fsevents_cli("status", "--root", str(root))
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:4] == ["NODE", "HOST", "VERSION", "SEEN"]
    assert "web1" in table.stdout
    doc = json.loads(fsevents_cli("status", "--root", str(root), "--json").stdout)
    assert [n["node"] for n in doc["nodes"]] == ["web1"]
    assert doc["streams"][0]["newest"] == 1
    empty = fsevents_cli("status", "--root", str(root / "new"))
    assert "(no heartbeats yet)" in empty.stdout and "(no streams yet)" in empty.stdout
