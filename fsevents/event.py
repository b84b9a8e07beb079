"""The event value, name validation and the JSON codec of wire format v1."""

from __future__ import annotations

import json
import math
import operator
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from itertools import accumulate, repeat
from typing import Any

from .errors import CorruptEventError, InvalidEventError
from .signing import KID_RE, SIG_RE, Key, envelope

WIRE_VERSION = 1
DEFAULT_MAX_EVENT_SIZE = 1024 * 1024
#: Deepest nesting of arrays/objects an event file may have (the envelope is level 1).
MAX_DEPTH = 64
#: Longest integer literal, in digits: Python's default int max-str-digits, enforced here so
#: the result is the same on every Python and whatever sys.set_int_max_str_digits() says.
MAX_INT_DIGITS = 4300

NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
TOPIC_RE = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
# What a subscription pattern may contain: a topic plus the glob characters fnmatch knows.
PATTERN_RE = re.compile(r"[A-Za-z0-9_.:*?\[\]!-]{1,200}")

_FIELDS = ("v", "id", "stream", "seq", "topic", "time", "node", "origin", "data")
# A JSON string literal, escapes included (the "unrolled loop" form: linear, no backtracking).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Openers become 2, closers 0, everything else is deleted: depth = running sum of (x - 1).
_BRACKETS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[{]}")


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """True if *raw* nests arrays/objects more than *limit* levels (outside strings).

    A pre-scan rather than a bounded decoder: json's C scanner recurses on the C stack,
    bounded only by the interpreter's recursion limit, which applications may raise and whose
    C-level counterpart changed in 3.12; a pure-Python bounded decoder would be 10-50 times
    slower on every event. This scan runs at C speed (count, one regex, translate,
    accumulate) and usually stops at the first line: a file with fewer openers than the
    limit cannot be too deep.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", raw).translate(_BRACKETS, _NOT_BRACKETS)
    return max(accumulate(map(operator.sub, brackets, repeat(1))), default=0) > limit


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
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEventError(
            f"event data is not JSON-serialisable ({exc}); pass dicts, lists, strings, "
            "numbers, booleans or None"
        ) from exc
    if too_deep(text.encode("utf-8"), MAX_DEPTH - 1):  # the envelope is one more level
        raise InvalidEventError(
            f"event data nests deeper than {MAX_DEPTH - 1} levels, which followers refuse; "
            "flatten the payload"
        )
    return text


@dataclass(frozen=True, slots=True)
class Draft:
    """An event before the store has given it a sequence number."""

    topic: str
    data_json: str  # the payload, already encoded (and so already validated)
    time: float
    node: str
    origin: str
    key: Key | None = None  # signs the event when set (signing.py)

    def signature(self, stream: str, seq: int) -> dict[str, str]:
        """``{"kid", "sig"}`` of this draft stored at *stream*/*seq*; empty when unsigned."""
        if self.key is None:
            return {}
        signed = envelope(
            kid=self.key.kid,
            stream=stream,
            seq=seq,
            topic=self.topic,
            time=self.time,
            node=self.node,
            origin=self.origin,
            data=json.loads(self.data_json),
        )
        return {"kid": self.key.kid, "sig": self.key.sign(signed)}


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
    # Signature (signing.py): carried as read, checked by a follower that holds the key.
    kid: str | None = field(default=None, compare=False)
    sig: str | None = field(default=None, compare=False)

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
            **({"kid": self.kid, "sig": self.sig} if self.sig else {}),
            "data": self.data,
        }

    @staticmethod
    def encode(draft: Draft, stream: str, seq: int) -> bytes:
        """The exact bytes of the event file for *draft* at *stream*/*seq*.

        The payload is spliced in already encoded, so a large payload is serialised once.
        """
        head: dict[str, Any] = {
            "v": WIRE_VERSION,
            "id": f"{stream}:{seq}",
            "stream": stream,
            "seq": seq,
            "topic": draft.topic,
            "time": draft.time,
            "node": draft.node,
            "origin": draft.origin,
        }
        head.update(draft.signature(stream, seq))
        head_json = json.dumps(head, separators=(",", ":"), ensure_ascii=False)
        return (head_json[:-1] + ',"data":' + draft.data_json + "}").encode("utf-8")

    @classmethod
    def decode(cls, raw: bytes, *, max_size: int = DEFAULT_MAX_EVENT_SIZE) -> Event:
        """Parse and validate event bytes; raise CorruptEventError with the reason."""
        if len(raw) > max_size:
            raise CorruptEventError(f"larger than the {max_size}-byte limit")
        return cls.from_dict(parse_json(raw))

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
        # Signature fields are optional; malformed ones count as absent (an unsigned follower
        # ignores them, a follower with keys then rejects the event as unsigned).
        kid, sig = doc.get("kid"), doc.get("sig")
        signed = (
            isinstance(kid, str)
            and KID_RE.fullmatch(kid)
            and isinstance(sig, str)
            and SIG_RE.fullmatch(sig)
        )
        return cls(
            stream,
            seq,
            doc["topic"],
            float(time),
            doc["node"],
            origin,
            doc["data"],
            kid=kid if signed else None,
            sig=sig if signed else None,
        )


def parse_json(raw: bytes | str) -> Any:
    """Parse untrusted JSON from the volume with bounded depth, integers and floats, no NaN
    and no duplicate keys; raise CorruptEventError with the reason."""
    if too_deep(raw if isinstance(raw, bytes) else raw.encode("utf-8")):
        raise CorruptEventError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(
            raw.decode("utf-8") if isinstance(raw, bytes) else raw,
            parse_constant=_reject_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
            object_pairs_hook=_reject_duplicate_keys,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptEventError(f"not valid JSON ({exc})") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bounded_int(text: str) -> int:
    # Checked before int(): the digit count is what makes int() slow (quadratic before the
    # 3.11/3.10.7 limit) and it is the same check on every Python and limit setting.
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        raise ValueError(f"an integer of more than {MAX_INT_DIGITS} digits")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf, which no publisher can write
        raise ValueError(f"number {text[:20]}... is out of range")
    return value


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        raise ValueError("duplicate keys")
    return doc
