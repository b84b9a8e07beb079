"""``fsevents doctor --peer NODE``: two nodes measure how soon each sees the other's writes.

Run it on both nodes at once (``doctor --node web1 --peer web2`` and ``doctor --node web2
--peer web1``). Each node writes only in ``<root>/doctor/<node>/`` and reads the peer's
files there **by name** (no listing needed to find each other):

1. ``hello.json`` names the peer; each waits for the peer's hello that names it, fresh by
   the volume's clock (a leftover of an old run does not count).
2. Ping-pong: a node writes ``ping-<k>.json``; the peer, which has been probing for that
   name (the failed lookups a follower makes), answers ``pong-<k>.json``. The round trip
   bounds how late a follower sees a new event of a known node.
3. Just before ping 1 a node lists the peer's directory (as a follower's scan lists
   ``streams/``, so the client caches the listing), then lists it until pong 1 shows up:
   how late a listing shows a file already visible by name, i.e. how late a new node's
   stream is discovered. Each node writes only in its own directory because a client drops
   its cached listing of a directory it writes into itself (sshfs does), which would hide
   the staleness a reader of another node's directory sees.
4. ``done.json`` says a node has measured; each waits for the peer's (or for the peer's
   files to vanish: it saw ours first), then removes its files.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from ._fs import replace_atomic, unlink_quietly, visible, volume_clock
from .doctor import FAIL, INFO, OK, WARN, Check, probe_dir

_TICK = 0.002  # between probes: one open per file per tick, cheap even over a network


class PeerProbe:
    def __init__(
        self,
        root: Path,
        node: str,
        peer: str,
        *,
        pings: int,
        timeout: float,
        listing_timeout: float,
    ) -> None:
        if node == peer:
            raise ValueError(f"--peer must name another node than this one ({node!r})")
        self.mine, self.theirs = probe_dir(root) / node, probe_dir(root) / peer
        self.node, self.peer, self.pings = node, peer, pings
        self.timeout, self.listing_timeout = timeout, listing_timeout
        self.rtts: list[float] = []
        self.offsets: list[float] = []
        self.listing_lag: float | None = None
        self._sent_at = (0.0, 0.0)  # (monotonic, wall) of the unanswered ping
        self._pong1_seen: float | None = None
        self._echoed = 0

    def _mine(self, name: str) -> Path:
        return self.mine / f"{name}.json"

    def _theirs(self, name: str) -> Path:
        return self.theirs / f"{name}.json"

    def _write(self, name: str, doc: dict[str, Any]) -> None:
        replace_atomic(self._mine(name), json.dumps(doc).encode(), fsync=False)

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            doc = json.loads(self._theirs(name).read_bytes())
        except (OSError, ValueError):
            return None  # not there (yet), or caught mid-replace on a volume without rename
        return doc if isinstance(doc, dict) else None

    def _own_files(self) -> list[Path]:
        names = ["hello", "done"]
        names += [f"{k}-{i}" for k in ("ping", "pong") for i in range(1, self.pings + 1)]
        return [self._mine(n) for n in names]

    def run(self) -> list[Check]:
        self.mine.mkdir(parents=True, exist_ok=True)
        for path in self._own_files():
            unlink_quietly(path)
        try:
            self._write("hello", {"node": self.node, "peer": self.peer, "time": time.time()})
            if not self._until(self._peer_said_hello, self.timeout):
                return [self._no_answer("did not say hello")]
            if not self._until(self._exchange, self.timeout + self.listing_timeout):
                return [self._no_answer("stopped answering pings")]
            self._write("done", {"rtts": self.rtts, "listing_lag": self.listing_lag})
            if not self._until(self._peer_finished, self.listing_timeout):
                return [*self._checks(), self._no_answer("did not finish")]
            return self._checks()
        finally:
            for path in self._own_files():
                unlink_quietly(path)
            with contextlib.suppress(OSError):
                self.mine.rmdir()

    def _until(self, step: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not step():
            self._echo()
            if time.monotonic() > deadline:
                return False
            time.sleep(_TICK)
        return True

    def _peer_said_hello(self) -> bool:
        hello = self._read("hello")
        if hello is None or hello.get("peer") != self.node:
            return False
        try:
            age = volume_clock(self.mine) - self._theirs("hello").stat().st_mtime
        except OSError:
            return False
        return age < self.timeout

    def _peer_finished(self) -> bool:
        # Its done file, or its hello gone: it removes its files once it has seen our done,
        # so it may be gone before we read its done (it no longer needs our pongs then).
        return visible(self._theirs("done")) or not visible(self._theirs("hello"))

    def _echo(self) -> None:
        """Answer the peer's next ping as soon as it is visible by name."""
        ping = self._read(f"ping-{self._echoed + 1}")
        if ping is not None:
            self._echoed += 1
            self._write(f"pong-{self._echoed}", {"time": time.time()})

    def _exchange(self) -> bool:
        sent = len(self.rtts)
        if sent < self.pings and self._sent_at[0] == 0.0:
            if sent == 0:
                os.listdir(self.theirs)  # as a follower's scan: fills the client's cache
            self._sent_at = (time.monotonic(), time.time())
            self._write(f"ping-{sent + 1}", {"time": self._sent_at[1]})
        elif sent < self.pings:
            pong = self._read(f"pong-{sent + 1}")
            if pong is not None:
                rtt = time.monotonic() - self._sent_at[0]
                self.rtts.append(rtt)
                self.offsets.append(float(pong.get("time", 0)) - (self._sent_at[1] + rtt / 2))
                self._sent_at = (0.0, 0.0)
                if sent == 0:
                    self._pong1_seen = time.monotonic()
        if self.listing_lag is None and self._pong1_seen is not None:
            if "pong-1.json" in os.listdir(self.theirs):
                self.listing_lag = time.monotonic() - self._pong1_seen
            else:
                time.sleep(0.05)  # listing is the slow path: do not hammer the server
        return len(self.rtts) == self.pings and self.listing_lag is not None

    def _no_answer(self, what: str) -> Check:
        return Check(
            "peer",
            FAIL,
            f"peer {self.peer!r} {what} within the deadline: run `fsevents doctor --node "
            f"{self.peer} --peer {self.node}` on it at the same time, on the same target",
        )

    def _checks(self) -> list[Check]:
        one_way = [r / 2 for r in self.rtts]
        worst, median = max(one_way), statistics.median(one_way)
        seen = Check(
            "peer-name",
            OK if worst < 1.0 else WARN,
            f"{self.peer}'s new files are seen here by name after {median * 1000:.0f} ms "
            f"(worst {worst * 1000:.0f} ms of {len(one_way)}): events of known nodes arrive "
            "within poll_interval plus this"
            + ("" if worst < 1.0 else "; failed lookups are cached here, see 'caches'"),
            {"one_way_seconds": one_way},
        )
        lag = self.listing_lag or 0.0
        listing = Check(
            "peer-listing",
            INFO,
            f"a listing here showed {self.peer}'s new file {lag:.1f} s after it was visible by "
            f"name: a new node's stream is discovered up to ~{lag:.0f} s + scan_interval late",
            {"listing_lag_seconds": lag},
        )
        offset = statistics.median(self.offsets)
        clock = Check(
            "peer-clock",
            OK if abs(offset) <= 2.0 else WARN,
            f"{self.peer}'s clock is {offset:+.2f} s from this node's (harmless to delivery; "
            "status ages and cross-node merge order drift with it)",
            {"offset_seconds": offset},
        )
        return [seen, listing, clock]


def run_peer(
    root: Path,
    node: str,
    peer: str,
    *,
    pings: int = 5,
    timeout: float = 60.0,
    listing_timeout: float = 120.0,
) -> list[Check]:
    probe = PeerProbe(
        root, node, peer, pings=pings, timeout=timeout, listing_timeout=listing_timeout
    )
    return probe.run()


__all__ = ["FAIL", "INFO", "OK", "WARN", "PeerProbe", "run_peer"]
