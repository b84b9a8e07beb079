"""``fsevents bench``: runs end to end and reports every figure next to its baseline.

Only that the figures exist and are sane is asserted here; whether they meet the targets is
what the bench itself reports (README, "Performance").
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import fsevents_cli, wait_for

FIGURES = {
    "publish.single.1proc": "events/s",
    "publish.many.1proc": "events/s",
    "publish.single.4proc": "events/s",
    "publish.many.4proc": "events/s",
    "publish.single.4nodes": "events/s",
    "latency.watch.p50": "ms",
    "latency.watch.p99": "ms",
    "latency.poll.p50": "ms",
    "latency.poll.p99": "ms",
    "catchup.events_per_s": "events/s",
    "catchup.peak_rss_mb": "MB",
    "idle.cpu_percent": "% of one core",
    "poll.cost_us": "µs per poll",
    "scan.cost_us": "µs per scan",
}


def test_quick_bench_reports_every_figure_with_its_baseline(target: str) -> None:
    done = fsevents_cli("bench", "--quick", "--json", "--root", target, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["quick"] is True and report["machine"]["cpus"] >= 1
    assert set(report["figures"]) == set(FIGURES)
    for name, unit in FIGURES.items():
        figure = report["figures"][name]
        assert figure["unit"] == unit, name
        assert figure["value"] >= 0 and figure["baseline"] >= 0, (name, figure)
        assert figure["value"] > 0 or name == "idle.cpu_percent", (name, figure)
        assert figure["baseline_label"], name
    latency = report["figures"]["latency.watch.p99"]
    assert latency["value"] >= report["figures"]["latency.watch.p50"]["value"]
    assert "publish:" in done.stderr  # progress lines go to stderr, the report to stdout
    if Path(target).is_dir():
        assert list(Path(target).iterdir()) == []  # every phase removed what it wrote


def test_bench_table_and_bad_phase(tmp_path: Path) -> None:
    done = fsevents_cli("bench", "--quick", "--phases", "latency", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "latency.watch.p50" in done.stdout and "baseline" in done.stdout
    bad = fsevents_cli("bench", "--phases", "publsh")
    assert bad.returncode == 2 and "unknown bench phase" in bad.stderr


def test_redis_unavailable_is_reported_not_fatal() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    done = fsevents_cli("bench", "--phases", "", "--redis", f"redis://127.0.0.1:{port}/0")
    assert done.returncode == 0, done.stderr
    assert "redis unavailable:" in done.stdout


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private redis-server on a free loopback port, stopped after the test."""
    server = shutil.which("redis-server")
    if server is None or not _has_redis_client():
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server or the redis client is missing; run .ci/install-redis.sh")
        pytest.skip("redis-server or the redis client (pip install 'fsevents[redis]') missing")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        str(tmp_path),
    ]
    proc = subprocess.Popen([*args, "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: _listening(port), 10, 0.05, f"redis-server on port {port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def _has_redis_client() -> bool:
    try:
        import redis  # noqa: F401
    except ImportError:
        return False
    return True


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def test_redis_figures_side_by_side(redis_url: str) -> None:
    done = fsevents_cli("bench", "--quick", "--json", "--phases", "", "--redis", redis_url)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)["figures"]
    for kind in ("pubsub", "streams"):
        for name in ("publish.single", "publish.many", "latency.p50", "latency.p99"):
            assert figures[f"redis.{kind}.{name}"]["value"] > 0
