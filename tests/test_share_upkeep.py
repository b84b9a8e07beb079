"""What fsevents leaves on the share: file and directory modes, and stale temp files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from procs import fsevents_cli, wait_for

from fsevents import Bus
from fsevents._fs import unique_name
from fsevents.stores.files import FilesStore


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def test_configured_modes_are_exact_whatever_the_umask(root: Path) -> None:
    old = os.umask(0o077)
    try:
        bus = Bus(root, node="web1", file_mode=0o640, dir_mode=0o750)
        event = bus.publish("t.x")
    finally:
        os.umask(old)
    event_path = bus.store.event_path("web1", event.seq)  # type: ignore[attr-defined]
    assert _mode(event_path) == 0o640
    assert _mode(root / "nodes" / "web1.json") == 0o640
    assert {
        _mode(p) for p in (root, root / "tmp", event_path.parent, event_path.parent.parent)
    } == {0o750}


def test_default_modes_are_group_shareable(root: Path) -> None:
    event = Bus(root, node="web1").publish("t.x")
    path = FilesStore(root).event_path("web1", event.seq)
    assert _mode(path) == 0o644
    assert _mode(path.parent) == _mode(root / "streams") == 0o2775


def test_existing_directories_keep_their_mode(root: Path) -> None:
    (root / "streams").mkdir(parents=True)
    (root / "streams").chmod(0o700)  # someone else's choice: not ours to change
    Bus(root, node="web1").publish("t.x")
    assert _mode(root / "streams") == 0o700


@pytest.mark.parametrize("kwargs", [{"file_mode": 0o444}, {"dir_mode": 0o600}, {"file_mode": -1}])
def test_unusable_modes_are_refused(root: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be a mode"):
        Bus(root, node="web1", **kwargs)


def _temp(store: FilesStore, prefix: str, age: float) -> Path:
    path = store.tmp_dir / unique_name(prefix)
    path.write_bytes(b'{"partial":')
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_sweep_removes_only_stale_temp_files(root: Path) -> None:
    store = FilesStore(root)
    stale = [_temp(store, "web1", 7200), _temp(store, "web1.json", 4000)]
    fresh = _temp(store, "web1", 10)
    foreign = store.tmp_dir / "notes.txt"
    foreign.write_text("not ours")
    os.utime(foreign, (0, 0))
    assert store.sweep(3600) == 2
    assert not any(p.exists() for p in stale)
    assert fresh.exists() and foreign.exists()
    assert store.sweep(3600) == 0


def test_the_follower_sweeps_on_start(root: Path) -> None:
    store = FilesStore(root)
    stale = _temp(store, "crashed", 120)
    with Bus(store=store, node="web1", tmp_max_age=60) as bus:
        wait_for(lambda: bus.stats().get("temps_swept") == 1, 10, what="the sweep")
    assert not stale.exists()


def test_tail_sweeps_with_its_flag(root: Path) -> None:
    store = FilesStore(root)
    stale = _temp(store, "crashed", 120)
    kept = _temp(store, "crashed", 30)
    done = fsevents_cli("tail", "--root", str(root), "--timeout", "0.3", "--tmp-max-age", "60")
    assert done.returncode == 0, done.stderr
    assert not stale.exists() and kept.exists()
