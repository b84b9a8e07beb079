"""``fsevents status``: nodes, their processes' lag and counters, and the retained streams.

Store-level: it needs no running Bus, only the target (unlike the WSGI status page, which
shows one process's view).

Everything comes from the share: the heartbeat each node's processes refresh
(``nodes/<node>.json``, one entry per process) and the streams themselves. Lag is counted
in events: for each stream, the newest seq minus the position a process has reached.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from .cursor import Position
from .stores.base import Store, StreamInfo

#: Counters of readers that mean "look at this" (see README, "Status").
PROBLEM_COUNTERS = ("skipped", "holes", "gaps", "late", "handler_errors", "follower_errors")


def collect(store: Store, *, now: float | None = None) -> dict[str, Any]:
    """The status document: ``{"nodes": [...], "streams": [...]}`` (what ``--json`` prints)."""
    now = time.time() if now is None else now
    streams = store.describe_streams()
    nodes = [_node(name, doc, streams, now) for name, doc in store.read_heartbeats().items()]
    return {"time": now, "nodes": nodes, "streams": [s.to_json() for s in streams]}


def _node(name: str, doc: dict[str, Any], streams: list[StreamInfo], now: float) -> dict[str, Any]:
    entries = doc.get("processes")
    processes = []
    totals = dict.fromkeys(PROBLEM_COUNTERS, 0)
    for key, entry in sorted(entries.items()) if isinstance(entries, dict) else []:
        if not isinstance(entry, dict):
            continue
        counters = _dict(entry.get("counters"))
        for name_ in PROBLEM_COUNTERS:
            totals[name_] += _int(counters.get(name_))
        role = str(entry.get("role", "follower"))
        position = _dict(entry.get("position"))
        processes.append(
            {
                "key": key,
                "pid": entry.get("pid"),
                "role": role,
                "consumer": entry.get("consumer"),
                "version": entry.get("version"),
                "age": now - _float(entry.get("last_seen")),
                "lag": None if role == "publisher" else lag(position, streams),
                "counters": counters,
            }
        )
    return {
        "node": name,
        "host": doc.get("host"),
        "version": doc.get("version"),
        "age": now - _float(doc.get("last_seen")),
        "processes": processes,
        "counters": totals,
    }


def lag(position: Position, streams: list[StreamInfo]) -> int:
    """Events retained after *position*, summed over streams (unknown streams count whole)."""
    total = 0
    for info in streams:
        reached = position.get(info.stream)
        if not isinstance(reached, int):
            reached = (info.oldest or info.newest + 1) - 1
        total += max(info.newest - reached, 0)
    return total


def render(doc: dict[str, Any]) -> str:
    """A readable table of *doc* (from ``collect``)."""
    rows = [["NODE", "HOST", "VERSION", "SEEN", "PROCESS", "ROLE", "LAG", "SKIPPED/HOLES/GAPS"]]
    for node in doc["nodes"]:
        c = node["counters"]
        problems = f"{c['skipped']}/{c['holes']}/{c['gaps']}"
        rows.append(
            [node["node"], str(node["host"]), str(node["version"]), _ago(node["age"]),
             f"{len(node['processes'])} process(es)", "", "", problems]
        )  # fmt: skip
        for proc in node["processes"]:
            who = f"  consumer {proc['consumer']}" if proc["consumer"] else f"  pid {proc['pid']}"
            lag_text = "-" if proc["lag"] is None else str(proc["lag"])
            pc = proc["counters"]
            mine = f"{_int(pc.get('skipped'))}/{_int(pc.get('holes'))}/{_int(pc.get('gaps'))}"
            rows.append(["", "", "", _ago(proc["age"]), who, proc["role"], lag_text, mine])
    if not doc["nodes"]:
        rows.append(["(no heartbeats yet)", "", "", "", "", "", "", ""])
    lines = _table(rows)
    lines.append("")
    srows = [["STREAM", "EVENTS", "OLDEST", "NEWEST", "BYTES"]]
    for s in doc["streams"]:
        oldest = "-" if s["oldest"] is None else str(s["oldest"])
        srows.append([s["stream"], str(s["events"]), oldest, str(s["newest"]), str(s["bytes"])])
    if not doc["streams"]:
        srows.append(["(no streams yet)", "", "", "", ""])
    return "\n".join(lines + _table(srows))


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _ago(seconds: float) -> str:
    # Ages compare another node's clock with ours: `doctor` reports the offset if they drift.
    if seconds < -5:  # a beat written while we read is a little "in the future"; more is skew
        return f"in {-seconds:.0f}s (clock skew?)"
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    return value if type(value) is int else 0


def _float(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def cmd_status(args: argparse.Namespace) -> int:
    from .bus import default_root
    from .stores import open_store

    store = open_store(args.root or default_root(), state_dir=args.state_dir, create=args.create)
    try:
        doc = collect(store)
    finally:
        store.close()
    print(json.dumps(doc, indent=2) if args.json else render(doc))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``status`` to the CLI's subcommands."""
    status = sub.add_parser("status", parents=[common], help="nodes, lag, counters, streams")
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.set_defaults(run=cmd_status)
