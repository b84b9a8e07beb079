"""The files-store reader: late visibility, holes, gaps, driven by an injected clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_raw

from fsevents.stores.base import Gap
from fsevents.stores.files import FilesStore
from fsevents.stores.files_reader import FilesReader


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(root: Path) -> FilesStore:
    return FilesStore(root, segment_size=10)


def _reader(store: FilesStore, clock: FakeClock, gaps: list[Gap] | None = None) -> FilesReader:
    return FilesReader(
        store,
        {},
        hole_timeout=30,
        scan_interval=0,
        clock=clock,
        on_gap=gaps.append if gaps is not None else None,
    )


def _seqs(reader: FilesReader) -> list[int]:
    return [e.seq for e in reader.poll(100)]


def test_a_late_file_within_the_hole_timeout_keeps_order(store: FilesStore) -> None:
    clock = FakeClock()
    reader = _reader(store, clock)
    write_raw(store, "w", 1)
    write_raw(store, "w", 3)  # 2 is not visible yet
    assert _seqs(reader) == [1]
    clock.now += 10
    assert _seqs(reader) == []
    write_raw(store, "w", 2)
    assert _seqs(reader) == [2, 3]
    assert reader.counters["holes"] == 0


def test_a_hole_that_never_fills_is_delivered_past_then_late(store: FilesStore) -> None:
    clock = FakeClock()
    reader = _reader(store, clock)
    write_raw(store, "w", 1)
    write_raw(store, "w", 4)  # 2 and 3 missing
    assert _seqs(reader) == [1]
    clock.now += 29
    assert _seqs(reader) == []
    clock.now += 2
    assert _seqs(reader) == [4]
    assert reader.counters["holes"] == 1
    assert reader.position == {"w": 4}
    write_raw(store, "w", 3)  # turns up after all: delivered late, not lost
    assert _seqs(reader) == [3]
    assert reader.counters["late"] == 1


def test_a_hole_across_segments_is_found_by_listing(store: FilesStore) -> None:
    clock = FakeClock()
    reader = _reader(store, clock)
    write_raw(store, "w", 1)
    write_raw(store, "w", 25)  # segment 2; 2..24 missing, not reachable by probing next+1/+2
    assert _seqs(reader) == [1]
    clock.now += 31
    assert _seqs(reader) == [25]


def test_events_pruned_before_they_were_read_are_a_gap(store: FilesStore) -> None:
    clock = FakeClock()
    gaps: list[Gap] = []
    reader = FilesReader(
        store, {"w": 2}, hole_timeout=30, scan_interval=0, clock=clock, on_gap=gaps.append
    )
    for seq in (14, 15):  # 3..13 were removed by retention
        write_raw(store, "w", seq)
    assert _seqs(reader) == [14, 15]
    assert gaps == [Gap("w", 3, 14)]
    assert reader.counters["gaps"] == 1
    assert "3..13" in str(gaps[0])


def test_a_new_stream_is_read_from_its_oldest_event(store: FilesStore) -> None:
    clock = FakeClock()
    reader = _reader(store, clock)
    for seq in (7, 8):
        write_raw(store, "late-joiner", seq)
    assert _seqs(reader) == [7, 8]
    assert reader.counters["gaps"] == 0


def test_streams_are_merged_by_time_but_each_keeps_its_order(store: FilesStore) -> None:
    clock = FakeClock()
    reader = _reader(store, clock)
    write_raw(store, "a", 1, topic="t")
    write_raw(store, "b", 1, topic="t")
    events = reader.poll(100)
    assert sorted(e.id for e in events) == ["a:1", "b:1"]


def test_a_long_backlog_does_not_keep_other_streams_waiting(store: FilesStore) -> None:
    clock = FakeClock()
    reader = _reader(store, clock)
    for seq in range(1, 51):
        write_raw(store, "a", seq)
        write_raw(store, "b", seq)
    first = reader.poll(20)
    assert len(first) == 20
    assert {e.stream for e in first} == {"a", "b"}
    rest = [e for _ in range(10) for e in reader.poll(20)]
    assert len(first) + len(rest) == 100
