"""Node identity on the share: heartbeats, and one machine per node name.

Every node's processes append to one stream named after the node, allocating sequence
numbers under a lock that only exists on that machine. Two machines using the same node name
would therefore race for the same file names; the heartbeat is how one notices the other.
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
    age = clock() - float(beat.get("last_seen", 0))
    if age < CLAIM_TTL:
        raise NodeConflictError(
            errno.EEXIST,
            f"node name {node!r} is in use by another machine (host {beat.get('host')!r}, "
            f"pid {beat.get('pid')}, seen {age:.0f}s ago); give every machine its own node "
            "name with --node / FSEVENTS_NODE, or wait for the other machine's heartbeat to "
            f"expire ({CLAIM_TTL:.0f}s) if it has moved here",
        )


def heartbeat(
    store: Store,
    node: str,
    *,
    version: str,
    consumers: dict[str, Position],
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    doc = {
        "node": node,
        "machine": store.local.machine_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "version": version,
        "last_seen": clock(),
        "consumers": consumers,
    }
    store.write_heartbeat(node, doc)
    return doc
