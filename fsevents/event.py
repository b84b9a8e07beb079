"""The event value, name validation and the JSON codec of wire format v1."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from .errors import CorruptEventError, InvalidEventError

WIRE_VERSION = 1
DEFAULT_MAX_EVENT_SIZE = 1024 * 1024

NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
TOPIC_RE = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
# What a subscription pattern may contain: a topic plus the glob characters fnmatch knows.
PATTERN_RE = re.compile(r"[A-Za-z0-9_.:*?\[\]!-]{1,200}")

_FIELDS = ("v", "id", "stream", "seq", "topic", "time", "node", "origin", "data")


def validate_name(name: object, what: str = "node name") -> str:
    """Return *name* if it may name a node or stream (it becomes a path component)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name.startswith("."):
        raise InvalidEventError(
            f"invalid {what} {name!r}: use 1-64 characters from A-Z a-z 0-9 _ . - "
            "and do not start with a dot"
        )
    return name


def validate_topic(topic: object) -> str:
    if not isinstance(topic, str) or not TOPIC_RE.fullmatch(topic):
        raise InvalidEventError(
            f"invalid topic {topic!r}: use 1-200 characters from A-Z a-z 0-9 _ . : -"
        )
    return topic


def validate_pattern(pattern: object) -> str:
    if not isinstance(pattern, str) or not PATTERN_RE.fullmatch(pattern):
        raise InvalidEventError(
            f"invalid topic pattern {pattern!r}: a topic with optional glob characters * ? [ ]"
        )
    return pattern


def topic_matches(pattern: str, topic: str) -> bool:
    """Glob-style match: ``cache.*`` matches ``cache.invalidate``; ``*`` matches everything."""
    return pattern == "*" or fnmatchcase(topic, pattern)


def encode_data(data: Any) -> str:
    """Serialise a payload, or raise InvalidEventError that says why it is not JSON."""
    try:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEventError(
            f"event data is not JSON-serialisable ({exc}); pass dicts, lists, strings, "
            "numbers, booleans or None"
        ) from exc


@dataclass(frozen=True, slots=True)
class Draft:
    """An event before the store has given it a sequence number."""

    topic: str
    data_json: str  # the payload, already encoded (and so already validated)
    time: float
    node: str
    origin: str


@dataclass(frozen=True, slots=True)
class Event:
    """One immutable event, as every node sees it."""

    stream: str
    seq: int
    topic: str
    time: float
    node: str
    origin: str
    data: Any

    @property
    def id(self) -> str:
        return f"{self.stream}:{self.seq}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": WIRE_VERSION,
            "id": self.id,
            "stream": self.stream,
            "seq": self.seq,
            "topic": self.topic,
            "time": self.time,
            "node": self.node,
            "origin": self.origin,
            "data": self.data,
        }

    @staticmethod
    def encode(draft: Draft, stream: str, seq: int) -> bytes:
        """The exact bytes of the event file for *draft* at *stream*/*seq*.

        The payload is spliced in already encoded, so a large payload is serialised once.
        """
        head = json.dumps(
            {
                "v": WIRE_VERSION,
                "id": f"{stream}:{seq}",
                "stream": stream,
                "seq": seq,
                "topic": draft.topic,
                "time": draft.time,
                "node": draft.node,
                "origin": draft.origin,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return (head[:-1] + ',"data":' + draft.data_json + "}").encode("utf-8")

    @classmethod
    def decode(cls, raw: bytes, *, max_size: int = DEFAULT_MAX_EVENT_SIZE) -> Event:
        """Parse and validate event bytes; raise CorruptEventError with the reason."""
        if len(raw) > max_size:
            raise CorruptEventError(f"larger than the {max_size}-byte limit")
        try:
            doc = json.loads(
                raw.decode("utf-8"),
                parse_constant=_reject_constant,
                object_pairs_hook=_reject_duplicate_keys,
            )
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise CorruptEventError(f"not valid JSON ({exc})") from None
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Any) -> Event:
        """Validate a decoded event document; raise CorruptEventError with the reason."""
        if not isinstance(doc, dict):
            raise CorruptEventError("not a JSON object")
        if doc.get("v") != WIRE_VERSION:
            raise CorruptEventError(f"unknown wire version {doc.get('v')!r}")
        missing = [f for f in _FIELDS if f not in doc]
        if missing:
            raise CorruptEventError(f"missing fields {missing}")
        stream, seq, time, origin = doc["stream"], doc["seq"], doc["time"], doc["origin"]
        if not isinstance(stream, str) or not NAME_RE.fullmatch(stream) or stream[0] == ".":
            raise CorruptEventError(f"invalid stream {stream!r}")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise CorruptEventError(f"invalid seq {seq!r}")
        if doc["id"] != f"{stream}:{seq}":
            raise CorruptEventError(f"id {doc['id']!r} does not match stream and seq")
        if not isinstance(doc["topic"], str) or not TOPIC_RE.fullmatch(doc["topic"]):
            raise CorruptEventError(f"invalid topic {doc['topic']!r}")
        if not isinstance(doc["node"], str) or not NAME_RE.fullmatch(doc["node"]):
            raise CorruptEventError(f"invalid node {doc['node']!r}")
        if isinstance(time, bool) or not isinstance(time, (int, float)) or not math.isfinite(time):
            raise CorruptEventError(f"invalid time {time!r}")
        if not isinstance(origin, str) or len(origin) > 200:
            raise CorruptEventError("invalid origin")
        return cls(stream, seq, doc["topic"], float(time), doc["node"], origin, doc["data"])


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        raise ValueError("duplicate keys")
    return doc
