"""Shared settings and feature flags: immutable versions, conflicts, late starters, changes."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from procs import wait_for

from fsevents import (
    Bus,
    Features,
    InvalidEventError,
    SettingsConflictError,
    SharedSettings,
    UnsupportedStoreError,
)


@pytest.fixture
def buses(root: Path) -> Any:
    """Two Buses in this process (distinct origins, so each receives the other's events)."""
    first = Bus(root, node="a", poll_interval=0.05)
    second = Bus(root, node="b", poll_interval=0.05)
    yield first, second
    first.close()
    second.close()


def test_update_writes_immutable_numbered_versions(root: Path, buses: Any) -> None:
    site = SharedSettings(buses[0], "site", default={"theme": "light"})
    assert (site.version, site.value) == (0, {"theme": "light"})
    assert site.update({"theme": "dark"}) == 1
    assert site.update({"theme": "blue"}) == 2
    files = sorted(p.name for p in (root / "settings" / "site").iterdir())
    assert files == ["000000000001.json", "000000000002.json"]
    first = json.loads((root / "settings" / "site" / files[0]).read_text())
    assert (first["name"], first["version"], first["value"]) == ("site", 1, {"theme": "dark"})
    assert site.get("theme") == "blue" and site.get("missing", 3) == 3


def test_a_concurrent_update_that_lost_the_race_gets_a_conflict(buses: Any) -> None:
    mine, theirs = (SharedSettings(bus, "site") for bus in buses)
    theirs.update({"owner": "theirs"})
    with pytest.raises(SettingsConflictError, match="version 1 was written by another"):
        mine.update({"owner": "mine"})  # mine still holds version 0
    assert mine.refresh() and mine.value == {"owner": "theirs"}
    assert mine.update({"owner": "mine"}) == 2


def test_modify_retries_conflicts_so_that_no_change_is_lost(buses: Any) -> None:
    writers = [SharedSettings(bus, "counter", default={"n": 0}) for bus in buses for _ in (0, 1)]

    def bump(settings: SharedSettings) -> None:
        for _ in range(10):
            settings.modify(lambda doc: {"n": doc["n"] + 1}, attempts=100)

    threads = [threading.Thread(target=bump, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writers[0].refresh()
    assert writers[0].value == {"n": 40} and writers[0].version == 40


def test_every_process_follows_and_calls_on_change_in_order(buses: Any) -> None:
    writer = SharedSettings(buses[0], "site", default={})
    reader = SharedSettings(buses[1], "site", default={})
    changes: list[tuple[Any, Any]] = []
    reader.on_change(lambda old, new: changes.append((old, new)))
    buses[1].start()
    for n in range(1, 4):
        writer.update({"n": n})
    wait_for(lambda: reader.version == 3, 10, 0.01, "reader at version 3")
    assert changes == [({}, {"n": 1}), ({"n": 1}, {"n": 2}), ({"n": 2}, {"n": 3})]


def test_a_large_document_is_read_from_its_file(root: Path) -> None:
    small_events = {"max_event_size": 4096, "poll_interval": 0.05}
    with Bus(root, node="a", **small_events) as a, Bus(root, node="b", **small_events) as b:
        writer, reader = SharedSettings(a, "big"), SharedSettings(b, "big")
        writer.update({"blob": "x" * 10_000})  # too large for an event: only the version travels
        wait_for(lambda: reader.version == 1, 10, 0.01, "reader at version 1")
        assert reader.value == {"blob": "x" * 10_000}


def test_a_late_starter_reads_the_newest_version_even_past_a_stale_listing(
    buses: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = SharedSettings(buses[0], "site")
    for n in range(1, 6):
        writer.update({"n": n})
    # A network mount's listing may still show an old directory state; the probe by name
    # finds the newest version anyway.
    monkeypatch.setattr(SharedSettings, "_newest_listed", lambda self: 2)
    late = SharedSettings(buses[1], "site")
    assert (late.version, late.value) == (5, {"n": 5})


def test_an_unreadable_version_is_skipped_and_the_next_update_goes_past_it(
    root: Path, buses: Any
) -> None:
    writer = SharedSettings(buses[0], "site")
    writer.update({"n": 1})
    (root / "settings" / "site" / "000000000002.json").write_text("{not json")
    reader = SharedSettings(buses[1], "site")
    assert (reader.version, reader.value) == (2, {"n": 1})
    assert reader.counters["unreadable"] == 1
    assert reader.update({"n": 3}) == 3


def test_bad_arguments_are_refused_before_anything_is_written(root: Path, buses: Any) -> None:
    site = SharedSettings(buses[0], "site")
    with pytest.raises(InvalidEventError, match="not JSON"):
        site.update({"when": object()})
    with pytest.raises(ValueError, match="expected_version"):
        site.update({}, expected_version=-1)
    with pytest.raises(InvalidEventError):
        SharedSettings(buses[0], "../escape")
    assert not (root / "settings" / "site").exists() or not any(
        (root / "settings" / "site").iterdir()
    )


def test_settings_need_a_files_store() -> None:
    class NotFiles:
        store = object()

    with pytest.raises(UnsupportedStoreError, match="files store"):
        SharedSettings(NotFiles(), "site")  # type: ignore[arg-type]


def test_feature_flags_propagate_and_report_each_flip(buses: Any) -> None:
    here, there = Features(buses[0]), Features(buses[1])
    flips: list[tuple[str, bool]] = []
    there.on_change(lambda flag, enabled: flips.append((flag, enabled)))
    buses[1].start()
    assert not there.is_enabled("checkout") and there.is_enabled("checkout", default=True)
    here.enable("checkout")
    here.enable("search")
    here.disable("checkout")
    wait_for(lambda: there.settings.version == 3, 10, 0.01, "three flag changes")
    assert flips == [("checkout", True), ("search", True), ("checkout", False)]
    assert there.enabled() == ["search"] and here.enabled() == ["search"]
    with pytest.raises(InvalidEventError):
        here.enable("no spaces allowed")
