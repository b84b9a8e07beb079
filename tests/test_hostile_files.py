"""Hostile and broken event files, through the codec and through the real reader."""

from __future__ import annotations

import contextlib
import os
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import write_raw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsevents import Bus, RootError
from fsevents.errors import CorruptEventError, InvalidEventError, VolumeUnavailableError
from fsevents.event import MAX_DEPTH, MAX_INT_DIGITS, Draft, Event, encode_data, too_deep
from fsevents.stores.files import FilesStore


def _event_bytes(data: object = None, seq: int = 1, stream: str = "w") -> bytes:
    return Event.encode(Draft("t.x", encode_data(data), 1.5, stream, f"{stream}:1:x"), stream, seq)


def _with_data(literal: bytes) -> bytes:
    return _event_bytes()[: -len(b"null}")] + literal + b"}"


@pytest.mark.parametrize(
    "literal, reason",
    [
        (b"1" * (MAX_INT_DIGITS + 1), f"more than {MAX_INT_DIGITS} digits"),
        (b"-" + b"9" * (MAX_INT_DIGITS + 1), f"more than {MAX_INT_DIGITS} digits"),
        (b"1" * 900_000, f"more than {MAX_INT_DIGITS} digits"),
        (b"1e999", "out of range"),
        (b"-1e999", "out of range"),
        (b"Infinity", "Infinity is not JSON"),
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, f"nested deeper than {MAX_DEPTH} levels"),
        (b'{"a":1,"a":2}', "duplicate keys"),
    ],
)
def test_hostile_payloads_are_skipped_with_a_reason(literal: bytes, reason: str) -> None:
    with pytest.raises(CorruptEventError, match=reason):
        Event.decode(_with_data(literal))


def test_largest_accepted_values_still_decode() -> None:
    assert Event.decode(_with_data(b"7" * MAX_INT_DIGITS)).data == int("7" * MAX_INT_DIGITS)
    deepest = MAX_DEPTH - 1  # the envelope object is the first level
    data = Event.decode(_with_data(b"[" * deepest + b"]" * deepest)).data
    assert data == encode_data_roundtrip(deepest)
    assert Event.decode(_with_data(b"1.7976931348623157e308")).data == 1.7976931348623157e308


def encode_data_roundtrip(depth: int) -> object:
    value: object = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '["' + "[{" * 500 + '\\"[[[", "\\\\", "' + "{" * 100 + '"]'
    raw = _with_data(text.encode())
    assert not too_deep(raw)
    assert Event.decode(raw).data[0].startswith("[{[{")


def test_publishers_cannot_write_what_followers_refuse() -> None:
    with pytest.raises(InvalidEventError, match="nests deeper than"):
        encode_data(encode_data_roundtrip(MAX_DEPTH))
    encode_data(encode_data_roundtrip(MAX_DEPTH - 1))


@given(st.binary(max_size=400), st.integers(min_value=0, max_value=200))
def test_depth_prescan_agrees_with_a_plain_count(noise: bytes, depth: int) -> None:
    raw = b"[" * depth + noise.replace(b"[", b"").replace(b"]", b"").replace(b"{", b"") + b"]"
    if b'"' not in raw:
        assert too_deep(raw) == (depth > MAX_DEPTH)


# -- through the real reader -----------------------------------------------------------

_HOSTILE_CHUNKS = [
    b"[" * 200,
    b"9" * 5000,
    b"NaN",
    b"1e999",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b'"a":1,"a":2',
    b"\x00",
    b'"kid":"k","sig":"' + b"0" * 64 + b'"',
    b"}",
    b'"seq":2',
]


@st.composite
def mutated_event(draw: st.DrawFn) -> bytes:
    raw = bytearray(_event_bytes(draw(st.sampled_from([None, 1, "x", [1, {"a": "b"}]]))))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        if kind == "flip" and at < len(raw):
            raw[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del raw[at : at + draw(st.integers(min_value=1, max_value=8))]
        elif kind == "truncate":
            del raw[at:]
        elif kind == "splice":
            raw[at:at] = draw(st.sampled_from(_HOSTILE_CHUNKS))
    return bytes(raw)


@pytest.fixture(scope="module")
def scratch_store() -> Iterator[FilesStore]:
    # Module-scoped (hypothesis runs many examples per test): one store, one seq per example.
    with tempfile.TemporaryDirectory() as tmp:
        yield FilesStore(Path(tmp) / "root", state_dir=Path(tmp) / "state")


_next_seq = iter(range(1, 10**9))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_event() | st.binary(max_size=300))
def test_mutated_files_never_break_the_reader(scratch_store: FilesStore, raw: bytes) -> None:
    seq = next(_next_seq)
    stream = "w"
    write_raw(scratch_store, stream, seq, content=raw)
    reader = scratch_store.reader({stream: seq - 1}, hole_timeout=1, scan_interval=3600)
    events = reader.poll(10)
    expected: Event | None = None
    with contextlib.suppress(CorruptEventError):
        expected = Event.decode(raw)
    if expected is not None and (expected.stream, expected.seq) == (stream, seq):
        assert events == [expected]
        assert reader.counters["skipped"] == 0
    else:
        assert events == []
        assert reader.counters["skipped"] == 1
    assert reader.position[stream] == seq, "a bad file is skipped, never retried forever"


def test_huge_sparse_file_is_skipped_in_bounded_memory(root: Path) -> None:
    store = FilesStore(root)
    path = write_raw(store, "w", 1, content=b"")
    os.truncate(path, 1 << 30)  # 1 GiB, sparse: costs nothing until read
    write_raw(store, "w", 2, "after")
    reader = store.reader({"w": 0}, hole_timeout=1, scan_interval=3600)
    tracemalloc.start()
    try:
        events = reader.poll(10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [e.data for e in events] == ["after"]
    assert reader.counters["skipped"] == 1
    assert peak < 8 * store.max_event_size, f"read {peak} bytes for a 1 GiB file"


def test_a_fifo_in_a_stream_does_not_hang_the_reader(root: Path) -> None:
    store = FilesStore(root)
    write_raw(store, "w", 1, "before")
    os.mkfifo(store.event_path("w", 2))
    write_raw(store, "w", 3, "after")
    reader = store.reader({"w": 0}, hole_timeout=1, scan_interval=3600)
    assert [e.data for e in reader.poll(10)] == ["before", "after"]
    assert reader.counters["skipped"] == 1


def _plant(path: Path, kind: str) -> None:
    path.unlink(missing_ok=True)
    if kind == "huge":
        path.write_bytes(b"")
        os.truncate(path, 1 << 30)
    elif kind == "deep":
        path.write_bytes(b"[" * 60000 + b"]" * 60000)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        path.symlink_to("/etc/hostname")


@pytest.mark.parametrize("kind", ["huge", "deep", "fifo", "symlink"])
def test_hostile_heartbeats_and_markers_are_refused_cleanly(root: Path, kind: str) -> None:
    bus = Bus(root, node="web1")
    _plant(root / "nodes" / "web2.json", kind)
    assert bus.store.read_heartbeat("web2") is None
    Bus(root, node="web2").publish("t.x")  # the claim treats it as no heartbeat
    _plant(root / "fsevents.json", kind)
    with pytest.raises(RootError, match=r"cannot read .*fsevents\.json"):
        FilesStore(root)
    with pytest.raises(VolumeUnavailableError):
        bus.store.check_root()  # type: ignore[attr-defined]
