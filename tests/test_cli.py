"""The command line, tested by running it (``python -m fsevents``) as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from procs import fsevents_cli


def _tail(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fsevents", "tail", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_following(proc: subprocess.Popen[str]) -> None:
    """tail announces on stderr once it has taken its starting position."""
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "following" in line, line


def test_publish_then_tail_round_trip(target: str) -> None:
    env = {"FSEVENTS_ROOT": target}
    tail = _tail("--json", "--count", "2", "--timeout", "30", "--node", "reader", env=env)
    try:
        _wait_following(tail)
        first = fsevents_cli("publish", "cache.invalidate", '{"key": "products"}', env=env)
        second = fsevents_cli("publish", "a.b", "-", "--node", "web2", env=env, input="[1, 2]")
        assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
        out, _ = tail.communicate(timeout=30)
    finally:
        tail.kill()
    assert tail.returncode == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["data"] for e in events] == [{"key": "products"}, [1, 2]]
    assert events[0]["id"] == first.stdout.strip()
    assert events[1]["node"] == "web2" and events[1]["id"] == "web2:1"
    assert {"id", "stream", "seq", "topic", "time", "node", "data"} <= set(events[0])


def test_tail_readable_lines_topic_filter_and_from_beginning(target: str) -> None:
    for topic in ("cache.drop", "settings.changed", "cache.clear"):
        assert fsevents_cli("publish", topic, '"x"', "--root", target).returncode == 0
    result = fsevents_cli(
        "tail",
        "--root",
        target,
        "--from",
        "beginning",
        "--topic",
        "cache.*",
        "--count",
        "2",
        "--timeout",
        "20",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and "cache.drop" in lines[0] and "cache.clear" in lines[1]
    assert '"x"' in lines[0]


def test_tail_timeout_without_enough_events_exits_1(target: str) -> None:
    result = fsevents_cli("tail", "--root", target, "--count", "1", "--timeout", "0.5")
    assert result.returncode == 1
    assert fsevents_cli("tail", "--root", target, "--timeout", "0.3").returncode == 0


def test_tail_without_watcher_still_delivers(target: str) -> None:
    fsevents_cli("publish", "t", "0", "--root", target, "--node", "pub")
    tail = _tail(
        "--root",
        target,
        "--no-watch",
        "--poll-interval",
        "0.2",
        "--count",
        "1",
        "--timeout",
        "30",
        "--json",
    )
    try:
        _wait_following(tail)
        assert fsevents_cli("publish", "t", "1", "--root", target, "--node", "pub").returncode == 0
        out, _ = tail.communicate(timeout=30)
    finally:
        tail.kill()
    assert json.loads(out)["data"] == 1


def test_durable_tail_resumes_where_it_stopped(target: str) -> None:
    args = ("tail", "--root", target, "--consumer", "ops", "--json", "--timeout", "20")
    assert fsevents_cli(*args, "--timeout", "0.3").returncode == 0  # creates the consumer
    for n in range(3):
        fsevents_cli("publish", "t", str(n), "--root", target, "--node", "pub")
    first = fsevents_cli(*args, "--count", "3")
    assert [json.loads(line)["data"] for line in first.stdout.splitlines()] == [0, 1, 2]
    fsevents_cli("publish", "t", "3", "--root", target, "--node", "pub")
    second = fsevents_cli(*args, "--count", "1")
    assert [json.loads(line)["data"] for line in second.stdout.splitlines()] == [3]


def test_default_root_needs_no_configuration(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    published = fsevents_cli("publish", "hello", env=env)
    assert published.returncode == 0, published.stderr
    result = fsevents_cli("tail", "--from", "beginning", "--count", "1", "--timeout", "20", env=env)
    assert "hello" in result.stdout
    assert list((tmp_path / "data" / "fsevents" / "events" / "streams").iterdir())


@pytest.mark.parametrize(
    "args, message",
    [
        (["publish", "bad topic"], "invalid topic 'bad topic'"),
        (["publish", "t", "{not json"], "DATA is not valid JSON"),
        (["publish", "t", "--node", "../x"], "invalid node name '../x'"),
        (["tail", "--count", "0"], "must be a whole number > 0"),
        (["tail", "--poll-interval", "-1"], "must be a number > 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = fsevents_cli(*args, "--root", str(tmp_path / "r"))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r" / "streams").exists() or not any(
        (tmp_path / "r" / "streams").iterdir()
    )


def test_a_root_that_is_a_file_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = fsevents_cli("publish", "t", "--root", str(tmp_path / "file"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"fsevents: error: {tmp_path / 'file'} is not a directory; point --root at a directory"
    ]


def test_ctrl_c_exits_quietly_with_130(target: str) -> None:
    tail = _tail("--root", target)
    try:
        _wait_following(tail)
        tail.send_signal(signal.SIGINT)
        _, err = tail.communicate(timeout=20)
    finally:
        tail.kill()
    assert tail.returncode == 130
    assert "Traceback" not in err


def test_console_script_and_version() -> None:
    script = Path(sys.executable).with_name("fsevents")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("fsevents ")
    help_text = fsevents_cli("tail", "--help").stdout
    for flag in (
        "--topic",
        "--from",
        "--json",
        "--count",
        "--timeout",
        "--no-watch",
        "--poll-interval",
        "--consumer",
        "--root",
        "--node",
    ):
        assert flag in help_text


def test_max_event_size_applies_to_publish_and_tail(target: str) -> None:
    big = json.dumps("x" * 2000)
    refused = fsevents_cli("publish", "t", big, "--root", target, "--max-event-size", "1000")
    assert refused.returncode == 2 and "over the 1000-byte limit" in refused.stderr
    assert fsevents_cli("publish", "t", big, "--root", target).returncode == 0
    small = fsevents_cli(
        "tail",
        "--root",
        target,
        "--from",
        "beginning",
        "--count",
        "1",
        "--timeout",
        "1",
        "--max-event-size",
        "1000",
    )
    assert small.returncode == 1, "a reader with a smaller limit skips the big event"
    whole = fsevents_cli(
        "tail", "--root", target, "--from", "beginning", "--count", "1", "--timeout", "20"
    )
    assert whole.returncode == 0 and "xxxx" in whole.stdout


def test_no_create_is_one_clear_line(tmp_path: Path) -> None:
    result = fsevents_cli("publish", "t", "--root", str(tmp_path / "unmounted"), "--no-create")
    assert result.returncode == 2
    assert "is not an fsevents root yet" in result.stderr and "mounted" in result.stderr
    assert not (tmp_path / "unmounted").exists()
