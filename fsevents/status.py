"""What a status page shows: this process, the known nodes with last-seen time and lag, and
the most recent events. Store-generic: it uses only the Store contract."""

from __future__ import annotations

import html
import os
import time
from typing import Any

from ._version import __version__
from .bus import Bus
from .cursor import Position

DEFAULT_RECENT_EVENTS = 20


def lag(head: Position, position: Position) -> int:
    """Events visible on the volume that *position* has not reached yet."""
    return sum(max(0, newest - position.get(stream, 0)) for stream, newest in head.items())


def collect(bus: Bus, *, recent: int = DEFAULT_RECENT_EVENTS) -> dict[str, Any]:
    """A JSON-ready snapshot of the farm as this process sees it."""
    store, now = bus.store, time.time()
    head, position = store.head(), bus.position
    nodes = []
    for node in sorted(set(head) | {bus.node}):
        beat = store.read_heartbeat(node) or {}
        last_seen = beat.get("last_seen")
        consumers = beat.get("consumers")
        consumers = consumers if isinstance(consumers, dict) else {}
        nodes.append(
            {
                "node": node,
                "host": beat.get("host"),
                "pid": beat.get("pid"),
                "version": beat.get("version"),
                "last_seen": last_seen,
                "age": round(now - last_seen, 1) if isinstance(last_seen, (int, float)) else None,
                "events": head.get(node, 0),
                "lag": {
                    name: lag(head, pos) for name, pos in consumers.items() if isinstance(pos, dict)
                },
            }
        )
    return {
        "node": bus.node,
        "pid": os.getpid(),
        "origin": bus.origin,
        "version": __version__,
        "store": repr(store),
        "time": now,
        "position": position,
        "lag": lag(head, position),
        "stats": bus.stats(),
        "nodes": nodes,
        "recent": recent_events(bus, recent) if recent > 0 else [],
    }


def recent_events(bus: Bus, count: int) -> list[dict[str, Any]]:
    """The newest *count* events of the farm, newest first."""
    store = bus.store
    head, oldest = store.head(), store.beginning()
    start = {s: max(newest - count, oldest.get(s, 0)) for s, newest in head.items()}
    reader = store.reader(start, hole_timeout=0.0, scan_interval=3600.0)
    events = reader.poll(count * max(1, len(head)))
    events.sort(key=lambda e: e.time, reverse=True)
    return [e.to_dict() for e in events[:count]]


def render_html(doc: dict[str, Any], *, refresh: int = 5) -> str:
    """A page a person can read; every value is escaped (node names come from the volume)."""

    def e(value: object) -> str:
        return html.escape("" if value is None else str(value))

    def table(headers: list[str], rows: list[list[object]]) -> str:
        head = "".join(f"<th>{e(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    node_rows: list[list[object]] = [
        [
            n["node"] + (" (this node)" if n["node"] == doc["node"] else ""),
            n["host"],
            n["pid"],
            _when(n["last_seen"]),
            "" if n["age"] is None else f"{n['age']:.1f} s ago",
            n["events"],
            ", ".join(f"{name}: {value}" for name, value in n["lag"].items()) or "-",
        ]
        for n in doc["nodes"]
    ]
    event_rows: list[list[object]] = [
        [_when(ev["time"]), ev["id"], ev["topic"], ev["node"], _short(ev["data"])]
        for ev in doc["recent"]
    ]
    stats = ", ".join(f"{k}={v}" for k, v in sorted(doc["stats"].items())) or "-"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="{int(refresh)}">
<title>fsevents: {e(doc["node"])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}</style></head>
<body><h1>fsevents on node {e(doc["node"])}</h1>
<p>process {e(doc["pid"])} &middot; fsevents {e(doc["version"])} &middot; {e(doc["store"])}
&middot; lag {e(doc["lag"])} event(s) &middot; {e(stats)}</p>
<h2>Nodes</h2>
{table(["node", "host", "pid", "last seen", "age", "events", "consumer lag"], node_rows)}
<h2>Recent events</h2>
{table(["time", "id", "topic", "node", "data"], event_rows)}
</body></html>
"""


def _when(stamp: object) -> str:
    if not isinstance(stamp, (int, float)):
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
