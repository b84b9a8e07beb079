"""Node identity on the share: heartbeats, and one machine per node name.

Every node's processes append to one stream named after the node, allocating sequence
numbers under a lock that only exists on that machine. Two machines using the same node name
would therefore race for the same file names; the heartbeat is how one notices the other.

One heartbeat document per node (``nodes/<node>.json``) holds an entry per process: each
process of the node replaces its own entry under a lock on the node's *local* disk (all of a
node's processes share one machine, and locks on the share itself do not exclude across
clients), so concurrent beats of sibling processes never drop each other's entry. ``status``
reads the entries for per-consumer lag and counters; ``claim`` reads the top-level fields.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .cursor import Position
from .errors import NodeConflictError
from .event import validate_name

if TYPE_CHECKING:
    from .stores.base import Store

NODE_ENV = "FSEVENTS_NODE"
# A heartbeat younger than this, from another machine, means that machine owns the name.
CLAIM_TTL = 120.0
# An ephemeral process entry not refreshed for this long belongs to a process that died
# without saying goodbye (SIGKILL); the next beat of a sibling drops it. Durable consumers'
# entries stay (their lag matters while they are down) until they are this old:
CONSUMER_TTL = 7 * 86400.0


def default_node_name() -> str:
    """$FSEVENTS_NODE, else the host name cut to a valid node name."""
    name = os.environ.get(NODE_ENV)
    if name:
        return validate_name(name)
    host = socket.gethostname().split(".")[0] or "node"
    cleaned = "".join(c if c.isalnum() or c in "_-" else "-" for c in host)[:64].lstrip(".")
    return validate_name(cleaned or "node")


def claim(store: Store, node: str, *, clock: Callable[[], float] = time.time) -> None:
    """Refuse to write as *node* while another machine has been heard from as *node*."""
    beat = store.read_heartbeat(node)
    if beat is None or beat.get("machine") == store.local.machine_id:
        return
    age = clock() - _number(beat.get("last_seen"))
    if age < CLAIM_TTL:
        raise NodeConflictError(
            errno.EEXIST,
            f"node name {node!r} is in use by another machine (host {beat.get('host')!r}, "
            f"pid {beat.get('pid')}, seen {age:.0f}s ago); give every machine its own node "
            "name with --node / FSEVENTS_NODE, or wait for the other machine's heartbeat to "
            f"expire ({CLAIM_TTL:.0f}s) if it has moved here",
        )


def process_entry(
    *,
    role: str,
    consumer: str | None,
    position: Position,
    counters: dict[str, int],
    version: str,
    now: float,
) -> dict[str, Any]:
    """What one process says about itself in its node's heartbeat."""
    return {
        "pid": os.getpid(),
        "role": role,  # consumer (durable), follower (from "now"), or publisher only
        "consumer": consumer,
        "position": position,
        "counters": counters,
        "version": version,
        "last_seen": now,
    }


def heartbeat(
    store: Store,
    node: str,
    *,
    key: str,
    entry: dict[str, Any] | None,
    version: str,
    clock: Callable[[], float] = time.time,
    stale_after: float = CLAIM_TTL,
) -> dict[str, Any]:
    """Replace this process's entry (*key*) in *node*'s heartbeat; ``entry=None`` removes it."""
    with store.local.lock(f"heartbeat-{node}"):
        now = clock()
        old = store.read_heartbeat(node)
        processes: dict[str, Any] = {}
        if old is not None and old.get("machine") == store.local.machine_id:
            kept = old.get("processes")
            processes = dict(kept) if isinstance(kept, dict) else {}
        processes = {k: v for k, v in processes.items() if _alive(v, now, stale_after)}
        if entry is None:
            processes.pop(key, None)
        else:
            processes[key] = entry
        doc = {
            "node": node,
            "machine": store.local.machine_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "version": version,
            "last_seen": now,
            "processes": processes,
            # {consumer: position}, the summary the WSGI status page reads
            "consumers": {
                p["consumer"]: p.get("position", {})
                for p in processes.values()
                if p.get("consumer")
            },
        }
        store.write_heartbeat(node, doc)
        return doc


def _alive(entry: object, now: float, stale_after: float) -> bool:
    if not isinstance(entry, dict):
        return False
    ttl = CONSUMER_TTL if entry.get("consumer") else stale_after
    return now - _number(entry.get("last_seen")) < ttl


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
