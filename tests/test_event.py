"""The event value and its codec: names, topics, payloads, and hostile bytes."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsevents.errors import CorruptEventError, InvalidEventError
from fsevents.event import (
    Draft,
    Event,
    encode_data,
    topic_matches,
    validate_name,
    validate_topic,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


def _draft(data: object = None, topic: str = "cache.invalidate") -> Draft:
    return Draft(topic, encode_data(data), 1700000000.25, "web1", "web1:1:abcd")


@given(json_values)
def test_round_trip_keeps_every_json_payload(data: object) -> None:
    raw = Event.encode(_draft(data), "web1", 7)
    event = Event.decode(raw)
    assert (event.stream, event.seq, event.id, event.topic) == (
        "web1",
        7,
        "web1:7",
        "cache.invalidate",
    )
    assert event.data == data
    assert json.loads(raw)["data"] == data


@given(st.binary(max_size=300))
def test_random_bytes_are_rejected_cleanly(raw: bytes) -> None:
    with contextlib.suppress(CorruptEventError):
        Event.decode(raw)


@given(
    st.dictionaries(
        st.sampled_from(
            ["v", "id", "stream", "seq", "topic", "time", "node", "origin", "data", "extra"]
        ),
        json_values,
    )
)
def test_malformed_documents_are_rejected_cleanly(doc: dict[str, object]) -> None:
    with contextlib.suppress(CorruptEventError):
        Event.decode(json.dumps(doc).encode())


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b'{"v":1,"v":1}', "duplicate keys"),
        (b"[1,2]", "not a JSON object"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),
        (b'{"v":1,"x":NaN}', "NaN is not JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[" * 100000 + b"]" * 100000, "nested deeper than 64 levels"),
    ],
)
def test_hostile_documents_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(CorruptEventError, match=reason):
        Event.decode(raw)


def test_id_must_match_stream_and_seq() -> None:
    doc = json.loads(Event.encode(_draft(), "web1", 3))
    doc["id"] = "web1:4"
    with pytest.raises(CorruptEventError, match="does not match"):
        Event.decode(json.dumps(doc).encode())


def test_oversized_file_is_rejected_before_parsing() -> None:
    raw = Event.encode(_draft("x" * 2000), "web1", 1)
    with pytest.raises(CorruptEventError, match="larger than the 1000-byte limit"):
        Event.decode(raw, max_size=1000)


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../x", "x" * 65, "sp ace", "é", 5, None])
def test_invalid_node_names_are_refused(name: object) -> None:
    with pytest.raises(InvalidEventError, match="invalid node name"):
        validate_name(name)


@pytest.mark.parametrize("topic", ["", "a b", "a/b", "x" * 201, "*", 3])
def test_invalid_topics_are_refused(topic: object) -> None:
    with pytest.raises(InvalidEventError, match="invalid topic"):
        validate_topic(topic)


def test_data_must_be_json() -> None:
    with pytest.raises(InvalidEventError, match="not JSON-serialisable"):
        encode_data({"when": object()})
    with pytest.raises(InvalidEventError, match="not JSON-serialisable"):
        encode_data(float("nan"))


@pytest.mark.parametrize(
    "pattern, topic, matches",
    [
        ("*", "anything", True),
        ("cache.*", "cache.invalidate", True),
        ("cache.*", "settings.changed", False),
        ("cache.invalidate", "cache.invalidate", True),
        ("cache.?", "cache.x", True),
    ],
)
def test_topic_patterns_are_globs(pattern: str, topic: str, matches: bool) -> None:
    assert topic_matches(pattern, topic) is matches


def test_event_is_immutable() -> None:
    event = Event.decode(Event.encode(_draft(), "web1", 1))
    with pytest.raises(AttributeError):
        event.seq = 2  # type: ignore[misc]
