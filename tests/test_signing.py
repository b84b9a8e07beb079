"""Signed events: key files, sign/verify, rotation, forged, tampered and replayed events."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
from pathlib import Path

import pytest
from helpers import Inbox, write_raw
from procs import fsevents_cli, wait_for

from fsevents import Bus
from fsevents.errors import KeyFileError
from fsevents.event import Event
from fsevents.signing import load_keyring
from fsevents.stores.files import FilesStore

FAST = {"poll_interval": 0.05, "scan_interval": 0.1}


def key_file(directory: Path, *kids: str, name: str = "farm.key") -> Path:
    """A key file holding a fresh secret for each key id (the first one signs)."""
    path = directory / name
    path.write_text(
        "# test farm key\n" + "".join(f"{kid} {secrets.token_hex(32)}\n" for kid in kids)
    )
    path.chmod(0o600)
    return path


def with_first(path: Path, kid: str) -> Path:
    """The same keys with *kid* moved first (step 2 of a rotation), in a new file."""
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    lines.sort(key=lambda ln: ln.split()[0] != kid)
    new = path.with_name(f"{path.stem}-{kid}.key")
    new.write_text("\n".join(lines) + "\n")
    return new


def test_a_follower_with_the_key_delivers_signed_events(target: str, tmp_path: Path) -> None:
    key = key_file(tmp_path, "k1")
    publisher = Bus(target, node="web1", key_file=key)
    inbox = Inbox()
    with Bus(target, node="reader", key_file=key, **FAST) as follower:
        follower.subscribe("*", inbox)
        publisher.publish("cache.invalidate", {"key": "products", "n": [1, 2.5, "é"]})
        [event] = inbox.wait(1)
    assert event.data == {"key": "products", "n": [1, 2.5, "é"]}
    assert event.kid == "k1" and event.sig is not None
    assert follower.stats().get("rejected_unverified", 0) == 0
    publisher.close()


def test_every_store_rejects_unsigned_and_foreign_key_events(target: str, tmp_path: Path) -> None:
    key = key_file(tmp_path, "k1")
    other = key_file(tmp_path, "k1", name="other.key")  # same key id, another secret
    Bus(target, node="unsigned").publish("evil.unsigned")
    Bus(target, node="forger", key_file=other).publish("evil.forged")
    Bus(target, node="web1", key_file=key).publish("good")
    reader = Bus(target, node="reader", key_file=key, **FAST)
    assert [e.topic for e in reader.follow(start="beginning", timeout=0.3)] == ["good"]
    assert reader.stats()["rejected_unverified"] == 2


def test_unsigned_forged_and_tampered_events_are_rejected_and_counted(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = key_file(tmp_path, "k1")
    other = key_file(tmp_path, "k1", name="attacker.key")  # same key id, other secret
    Bus(root, node="web1", key_file=key).publish("warm.up")
    inbox = Inbox()
    follower = Bus(root, node="reader", key_file=key, **FAST)
    follower.subscribe("*", inbox)
    with follower:
        Bus(root, node="unsigned").publish("evil.unsigned")
        Bus(root, node="forger", key_file=other).publish("evil.forged")
        signed = Bus(root, node="web1", key_file=key)
        good = signed.publish("good.one", {"amount": 1})
        # tamper: change the payload of a validly signed file, keep its signature
        path = follower.store.event_path("web1", good.seq)  # type: ignore[attr-defined]
        doc = json.loads(path.read_bytes())
        tampered = {**doc, "seq": good.seq + 1, "id": f"web1:{good.seq + 1}", "data": 1e6}
        staged = tmp_path / "tampered.json"  # whole or nothing, as a real writer would
        staged.write_text(json.dumps(tampered))
        tampered_path = path.with_name(f"{good.seq + 1:012d}.json")
        os.replace(staged, tampered_path)
        signed.store.local.write_counter("web1", good.seq + 1)
        last = signed.publish("good.two")
        inbox.wait(2)
        # the new streams of "unsigned" and "forger" are found by the next scan
        wait_for(lambda: follower.stats().get("rejected_unverified") == 3, 10, what="3 rejects")
        assert [e.topic for e in inbox.events] == ["good.one", "good.two"]
    assert last.seq == good.seq + 2 and tampered_path.exists()
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "evil.unsigned" in messages and "it is not signed" in messages
    assert "does not verify" in messages


def test_a_follower_without_keys_ignores_signatures(root: Path, tmp_path: Path) -> None:
    key = key_file(tmp_path, "k1")
    Bus(root, node="web1", key_file=key).publish("t.signed", 1)
    got = list(Bus(root, node="plain", **FAST).follow(start="beginning", timeout=0.3))
    assert [e.data for e in got] == [1]


def test_rotation_accepts_old_and_new_keys(root: Path, tmp_path: Path) -> None:
    both = key_file(tmp_path, "old", "new")  # step 1: every node accepts "new", signs "old"
    new_first = with_first(both, "new")  # step 2: nodes sign with "new"
    only_new = key_file(tmp_path, "new", name="only-new.key")
    Bus(root, node="a", key_file=both).publish("t.x", "by old")
    Bus(root, node="b", key_file=new_first).publish("t.x", "by new")
    got = list(Bus(root, node="r", key_file=both, **FAST).follow(start="beginning", timeout=0.3))
    assert sorted(e.data for e in got) == ["by new", "by old"]
    assert sorted(e.kid or "" for e in got) == ["new", "old"]
    # a follower that only holds an unrelated "new" secret rejects both
    reader = Bus(root, node="r2", key_file=only_new, **FAST)
    assert list(reader.follow(start="beginning", timeout=0.3)) == []
    assert reader.stats()["rejected_unverified"] == 2


def test_signature_covers_stream_seq_and_every_field(root: Path, tmp_path: Path) -> None:
    keyring = load_keyring(key_file(tmp_path, "k1"))
    event = Bus(root, node="web1", key_file=keyring.path).publish("t.x", {"a": 1})
    store = FilesStore(root)
    [read] = store.reader({"web1": 0}, hole_timeout=1, scan_interval=1).poll(10)
    assert keyring.rejection(read) is None and read.id == event.id
    for change in (
        {"seq": 2},
        {"stream": "web2"},
        {"topic": "t.y"},
        {"time": read.time + 1},
        {"node": "web2"},
        {"origin": "web2:1:x"},
        {"data": {"a": 2}},
        {"kid": "k2"},
    ):
        changed = dataclasses.replace(read, **change)  # type: ignore[arg-type]
        assert keyring.rejection(changed) is not None, change


def test_a_valid_signed_file_copied_elsewhere_is_rejected_as_a_replay(
    root: Path, tmp_path: Path
) -> None:
    key = key_file(tmp_path, "k1")
    Bus(root, node="web1", key_file=key).publish("pay.out", {"to": "x"})
    store = FilesStore(root)
    write_raw(store, "web1", 2, content=store.event_path("web1", 1).read_bytes())
    reader = store.reader({"web1": 1}, hole_timeout=1, scan_interval=1)
    assert reader.poll(10) == []
    assert reader.counters["skipped"] == 1


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "holds no key"),
        ("# only a comment\n", "holds no key"),
        ("k1\n", "line 1: expected"),
        ("k1 abc\n", "at least 32 hex digits"),
        ("k/1 " + "ab" * 16 + "\n", "line 1: expected"),
        ("k1 " + "zz" * 16 + "\n", "line 1: expected"),
        ("k1 " + "ab" * 16 + "\nk1 " + "cd" * 16 + "\n", "names a key id twice"),
    ],
)
def test_bad_key_files_say_what_is_wrong(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.key"
    path.write_text(content)
    with pytest.raises(KeyFileError, match=match):
        load_keyring(path)


def test_missing_key_file_and_world_readable_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(KeyFileError, match=r"cannot read key file .*missing\.key"):
        Bus(tmp_path / "root", node="a", key_file=tmp_path / "missing.key")
    path = key_file(tmp_path, "k1")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        load_keyring(path)
    assert "readable by every user" in caplog.text


def test_decode_treats_malformed_signature_fields_as_unsigned() -> None:
    raw = (
        b'{"v":1,"id":"a:1","stream":"a","seq":1,"topic":"t","time":1,"node":"a",'
        b'"origin":"o","kid":["x"],"sig":"nothex","data":null}'
    )
    event = Event.decode(raw)
    assert (event.kid, event.sig) == (None, None)


def test_cli_publish_and_tail_with_a_key_file(root: Path, tmp_path: Path) -> None:
    key = key_file(tmp_path, "k1")
    env = {"FSEVENTS_ROOT": str(root)}
    done = fsevents_cli("publish", "--node", "web1", "--key-file", str(key), "t.x", '"ok"', env=env)
    assert done.returncode == 0, done.stderr
    fsevents_cli("publish", "--node", "evil", "t.x", '"forged"', env=env)
    tail = fsevents_cli(
        "tail", "--from", "beginning", "--json", "--timeout", "1", "--poll-interval", "0.05",
        env={**env, "FSEVENTS_KEY_FILE": str(key)},
    )  # fmt: skip
    lines = [json.loads(line) for line in tail.stdout.splitlines()]
    assert [(d["data"], d["kid"]) for d in lines] == [("ok", "k1")]
    assert "rejecting event evil:1" in tail.stderr and "it is not signed" in tail.stderr
