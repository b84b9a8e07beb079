"""A small local "farm": two gunicorn instances of examples/flask_cache.py, two workers each,
different node names, one shared directory; shows an invalidation and a settings change
reaching every worker, with the time each took.

Run from the repository root (needs gunicorn, flask and cachetools: ``pip install -e '.[test]'``)::

    python examples/farm.py

Options: ``--workers N``, ``--root DIR`` (default: a new temporary directory), ``--keep`` to
leave the farm running until Ctrl-C (then open http://127.0.0.1:<port>/_fsevents).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(node: str, root: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "FSEVENTS_ROOT": str(root), "FSEVENTS_NODE": node}
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    command += ["--chdir", str(EXAMPLES), "--log-level", "warning", "flask_cache:app"]
    return subprocess.Popen(command, env=env), port


def get(port: int, path: str = "/") -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def wait_up(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            get(port)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def until_every_worker(port: int, workers: int, check: Any, timeout: float = 30.0) -> float:
    """Seconds until *workers* distinct worker pids each answered with check(reply) true."""
    started, good = time.monotonic(), set()
    while len(good) < workers:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"only workers {sorted(good)} of port {port} passed")
        reply = get(port)
        if check(reply):
            good.add(reply["pid"])
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description="a local two-instance gunicorn farm")
    parser.add_argument("--workers", type=int, default=2, help="workers per instance")
    parser.add_argument("--root", type=Path, help="shared directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep running until Ctrl-C")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="fsevents-farm-"))
    a, port_a = start("web-a", root, args.workers)
    b, port_b = start("web-b", root, args.workers)
    try:
        wait_up(port_a)
        wait_up(port_b)
        print(f"web-a on :{port_a}, web-b on :{port_b}, {args.workers} workers each, root {root}")
        for port in (port_a, port_b):  # every worker computes the report once and caches it
            until_every_worker(port, args.workers, lambda r: r["report"]["cached"])
        fresh_after = time.time()
        print("invalidate through web-a ...")
        get(port_a, "/invalidate")
        took = until_every_worker(
            port_b, args.workers, lambda r: r["report"]["computed_at"] > fresh_after
        )
        print(
            f"  every worker of web-b recomputed the report within {took * 1000:.0f} ms "
            "(including the 0.2 s the report takes to compute in each worker)"
        )
        print("change the greeting through web-b ...")
        get(port_b, "/greeting?text=Bonjour")
        took = until_every_worker(port_a, args.workers, lambda r: r["greeting"] == "Bonjour")
        print(f"  every worker of web-a greets with 'Bonjour' within {took * 1000:.0f} ms")
        nodes = [n["node"] for n in get(port_a, "/_fsevents.json")["nodes"]]
        print(f"status page of web-a knows nodes {nodes}: http://127.0.0.1:{port_a}/_fsevents")
        if args.keep:
            print("running; Ctrl-C to stop")
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    finally:
        for proc in (a, b):
            proc.send_signal(signal.SIGTERM)
        for proc in (a, b):
            proc.wait(30)
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
