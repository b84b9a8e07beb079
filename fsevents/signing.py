"""Signed events (optional): HMAC-SHA256 with a farm key, verified before any handler runs.

Anyone who can write to the shared volume can drop an event file there. With a key file,
publishers add ``"kid"`` (key id) and ``"sig"`` to each event, and followers that hold the key
deliver only events whose signature verifies. See README, "Signed events", for what this
protects against and what it does not.

Key file (text, one key per line, ``#`` comments)::

    <key id> <secret: at least 32 hex digits>

The first key signs; every key verifies. Rotation: add the new key as a second line on
every node, then move it first on every node, then delete the old line once no retained
event uses it.

What is signed is a canonical envelope, not the file's bytes: a JSON array of the format
tag, key id, stream, seq, topic, time, node, origin and the payload, encoded with sorted
keys and no spaces. A reader rebuilds it from the decoded event, so the signature survives
any re-encoding, and covers stream/seq, so a valid file copied to another seq (a replay)
fails even before the reader's own path check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import KeyFileError

if TYPE_CHECKING:
    from .event import Event

logger = logging.getLogger(__name__)

KEY_FILE_ENV = "FSEVENTS_KEY_FILE"
ENVELOPE_TAG = "fsevents-sig-1"
KID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
SIG_RE = re.compile(r"[0-9a-f]{64}")
MIN_SECRET_HEX = 32  # 128 bits
_MAX_KEY_FILE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Key:
    kid: str
    secret: bytes = field(repr=False)

    def sign(self, envelope_bytes: bytes) -> str:
        return hmac.new(self.secret, envelope_bytes, hashlib.sha256).hexdigest()


def envelope(
    *, kid: str, stream: str, seq: int, topic: str, time: float, node: str, origin: str, data: Any
) -> bytes:
    """The exact bytes that are signed and verified for one event."""
    fields = [ENVELOPE_TAG, kid, stream, seq, topic, float(time), node, origin, data]
    text = json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Keyring:
    """The keys of one key file: the first signs, all of them verify."""

    path: Path
    keys: tuple[Key, ...]

    @property
    def signing_key(self) -> Key:
        return self.keys[0]

    def rejection(self, event: Event) -> str | None:
        """Why *event* must not be delivered, or None when its signature verifies."""
        if event.kid is None or event.sig is None:
            return "it is not signed"
        key = next((k for k in self.keys if k.kid == event.kid), None)
        if key is None:
            return f"it is signed with key id {event.kid!r}, which {self.path} does not hold"
        expected = key.sign(
            envelope(
                kid=event.kid,
                stream=event.stream,
                seq=event.seq,
                topic=event.topic,
                time=event.time,
                node=event.node,
                origin=event.origin,
                data=event.data,
            )
        )
        if not hmac.compare_digest(expected, event.sig):
            return f"its signature (key id {event.kid!r}) does not verify"
        return None


def resolve_key_file(key_file: str | os.PathLike[str] | None) -> Path | None:
    """The key file to use: the argument, else $FSEVENTS_KEY_FILE, else none (unsigned)."""
    chosen = key_file or os.environ.get(KEY_FILE_ENV)
    return Path(chosen).expanduser() if chosen else None


def load_keyring(path: str | os.PathLike[str]) -> Keyring:
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            raw = fh.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise KeyFileError(
            f"cannot read key file {path}: {exc.strerror}; check the path given by --key-file "
            f"or ${KEY_FILE_ENV}"
        ) from exc
    if len(raw) > _MAX_KEY_FILE or not stat.S_ISREG(mode):
        raise KeyFileError(f"key file {path} is not a small regular file")
    if mode & stat.S_IROTH:
        logger.warning(
            "key file %s is readable by every user; chmod o-r it (anyone holding it can forge "
            "events)",
            path,
        )
    parsed = (_parse_line(path, n, line) for n, line in enumerate(_lines(path, raw), 1))
    keys = [k for k in parsed if k is not None]
    if not keys:
        raise KeyFileError(
            f"key file {path} holds no key; add a line '<key id> <secret>', e.g. from "
            "`python -c \"import secrets; print('k1', secrets.token_hex(32))\"`"
        )
    kids = [k.kid for k in keys]
    if len(set(kids)) != len(kids):
        raise KeyFileError(f"key file {path} names a key id twice; key ids must be unique")
    return Keyring(path, tuple(keys))


def _lines(path: Path, raw: bytes) -> list[str]:
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise KeyFileError(f"key file {path} is not UTF-8 text") from None


def _parse_line(path: Path, number: int, line: str) -> Key | None:
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    parts = text.split()
    if (
        len(parts) != 2
        or not KID_RE.fullmatch(parts[0])
        or len(parts[1]) < MIN_SECRET_HEX
        or not re.fullmatch(r"[0-9a-fA-F]+", parts[1])
        or len(parts[1]) % 2
    ):
        raise KeyFileError(
            f"{path}, line {number}: expected '<key id> <secret>' with a key id of 1-64 "
            f"characters from A-Z a-z 0-9 _ . - and a secret of at least {MIN_SECRET_HEX} hex "
            "digits"
        )
    return Key(parts[0], bytes.fromhex(parts[1]))
