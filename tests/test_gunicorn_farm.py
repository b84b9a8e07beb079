"""End to end: real gunicorn instances (2 workers each) on loopback, one shared directory.

Instance "alpha" preloads the app (the Bus is built in the master and the workers are forked
from it); "beta" imports it in each worker. Default intervals (poll 1 s): on one host the
file watcher carries the change in milliseconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from procs import wait_for

pytest.importorskip("gunicorn")

TESTS = Path(__file__).parent
BOUND = 2.0  # seconds: the propagation bound


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Instance:
    def __init__(self, node: str, shared: Path, data: Path, *, preload: bool) -> None:
        self.node, self.port = node, free_port()
        self.first_reply: dict[str, Any] = {}
        args = ["-w", "2", "-b", f"127.0.0.1:{self.port}", "--chdir", str(TESTS)]
        args += ["--graceful-timeout", "5", "--log-level", "warning"]
        args += [*(["--preload"] if preload else []), "farm_app:application"]
        env = {**os.environ, "FSEVENTS_ROOT": str(shared), "FSEVENTS_NODE": node}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *args],
            env={**env, "FARM_DATA": str(data)},
            stdin=subprocess.DEVNULL,
        )

    def get(self, path: str = "/") -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def wait_up(self, timeout: float = 30.0) -> dict[str, Any]:
        """The reply to the first request that got through."""

        def answers() -> dict[str, Any] | None:
            assert self.proc.poll() is None, f"gunicorn {self.node} exited"
            try:
                return self.get()
            except OSError:
                return None

        return wait_for(answers, timeout, 0.05, f"gunicorn {self.node} to answer")  # type: ignore[return-value]

    def every_worker(self, check: Any, timeout: float, workers: int = 2) -> set[int]:
        """Request until *workers* distinct pids have each answered with check(reply) true."""
        good: set[int] = set()

        def all_good() -> bool:
            reply = self.get()
            if check(reply):
                good.add(reply["pid"])
            return len(good) >= workers

        wait_for(all_good, timeout, 0.0, f"{workers} workers of {self.node}; good: {good}")
        return good

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Any]:
    shared, data = tmp_path / "shared", tmp_path / "data.txt"
    data.write_text("v1")
    started: list[Instance] = []

    def start(node: str, *, preload: bool = False) -> Instance:
        instance = Instance(node, shared, data, preload=preload)
        started.append(instance)
        instance.first_reply = instance.wait_up()
        return instance

    yield start
    for instance in started:
        instance.stop()


def test_invalidation_and_settings_reach_every_worker_of_every_instance(farm: Any) -> None:
    alpha, beta = farm("alpha", preload=True), farm("beta")
    # Fill every worker's cache with the old value first: only an eviction can change it.
    for instance in (alpha, beta):
        instance.every_worker(lambda r: r["value"] == "v1", timeout=30)

    assert alpha.get("/set-value?v=v2")["value"] == "v2"
    sent = time.monotonic()
    beta.every_worker(lambda r: r["value"] == "v2", timeout=BOUND)
    assert time.monotonic() - sent < BOUND

    assert beta.get("/set-greeting?g=bonjour")["greeting"] == "bonjour"
    sent = time.monotonic()
    alpha.every_worker(lambda r: r["greeting"] == "bonjour", timeout=BOUND)
    assert time.monotonic() - sent < BOUND

    first = farm("gamma").first_reply
    assert (first["greeting"], first["value"]) == ("bonjour", "v2")

    status = alpha.get("/_fsevents.json")
    assert {"alpha", "beta"} <= {n["node"] for n in status["nodes"]}
    assert status["node"] == "alpha" and status["lag"] >= 0
