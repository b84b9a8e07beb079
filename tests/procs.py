"""Starting node processes and waiting on their reports, with deadlines (no fixed sleeps)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from netfs import wait_for

WORKERS = str(Path(__file__).with_name("workers.py"))

__all__ = [
    "doctor_peers",
    "doctor_peers_results",
    "fsevents_cli",
    "read_lines",
    "read_records",
    "start_doctor",
    "start_worker",
    "wait_for",
    "wait_lines",
]


def start_worker(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, WORKERS, *args],
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def fsevents_cli(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fsevents", *args],
        env={**os.environ, **(env or {})},
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    # A SIGKILLed writer may leave a final partial line; only whole lines count.
    return text.split("\n")[:-1]


ACK = re.compile(r"[A-Za-z0-9_.-]{1,64}:\d+")


def read_acks(path: Path) -> list[str]:
    """Event ids a publisher recorded once publish() returned; fragments of a record cut by
    a SIGKILL are skipped (a truncated id is a prefix of a real one: an earlier seq)."""
    return [line for line in read_lines(path) if ACK.fullmatch(line)]


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in read_lines(path)]


def wait_lines(path: Path, count: int, timeout: float) -> list[str]:
    wait_for(
        lambda: len(read_lines(path)) >= count,
        timeout,
        0.05,
        f"{count} lines in {path} (have {len(read_lines(path))})",
    )
    return read_lines(path)


def start_doctor(root: Path, node: str, peer: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fsevents", "doctor", "--root", str(root), "--node", node,
         "--peer", peer, "--json", *extra],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def doctor_peers(a: Path, b: Path, *extra: str) -> list[subprocess.Popen[str]]:
    """Start ``doctor --peer`` as node-a on root *a* and as node-b on root *b*, at once."""
    return [
        start_doctor(a, "node-a", "node-b", *extra),
        start_doctor(b, "node-b", "node-a", *extra),
    ]


def doctor_peers_results(
    procs: list[subprocess.Popen[str]], timeout: float = 150
) -> list[dict[str, dict[str, Any]]]:
    """Each peer's checks by name; both must have exited 0."""
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), outs
    return [{c["name"]: c for c in json.loads(out)["checks"]} for out in outs]
