"""Test hygiene (STYLE.md): isolated state, no leaked threads, warnings are errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from netfs import shared_dirs, sshfs

__all__ = ["shared_dirs", "sshfs"]  # the sshfs harness fixtures, for every test module


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own machine state dir; nothing leaks in from the developer's env."""
    state = tmp_path / "state"
    monkeypatch.setenv("FSEVENTS_STATE_DIR", str(state))
    monkeypatch.delenv("FSEVENTS_ROOT", raising=False)
    monkeypatch.delenv("FSEVENTS_NODE", raising=False)
    return state


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        leaked[0].join(0.05)
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "shared"


#: Every store the contract tests run against; a new store is added here.
STORES = ["files", "sqlite"]


@pytest.fixture(params=STORES)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh target string for each store kind (what users pass as --root)."""
    if request.param == "sqlite":
        return str(tmp_path / "shared" / "events.db")
    return str(tmp_path / "shared")
