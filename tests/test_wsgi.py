"""WSGI middleware: one Bus per worker process (fork-safe), and the status page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from procs import read_lines, start_worker, wait_lines

from fsevents import Bus, FseventsMiddleware, RootError, init_flask


def call(app: Any, path: str, **environ: str) -> tuple[str, dict[str, str], bytes]:
    env: dict[str, Any] = {"PATH_INFO": path, **environ}
    setup_testing_defaults(env)
    replies: list[tuple[str, dict[str, str]]] = []
    body = b"".join(app(env, lambda status, headers: replies.append((status, dict(headers)))))
    return replies[0][0], replies[0][1], body


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@pytest.fixture
def bus(root: Path) -> Any:
    bus = Bus(root, node="web1", poll_interval=0.05)
    yield bus
    bus.close()


def test_the_first_request_starts_the_bus_and_the_app_answers(bus: Bus) -> None:
    app = FseventsMiddleware(hello, bus, status_path="/_fsevents")
    assert not bus.running  # building the app starts nothing (a pre-fork master)
    assert call(app, "/")[2] == b"hello"
    assert bus.running
    assert call(app, "/_fsevents/other")[2] == b"hello"  # only the exact path is the page


def test_the_status_page_in_json_and_html(root: Path) -> None:
    with Bus(root, node="web2") as other:
        other.publish("cache.invalidate", {"key": "<script>"})
    bus = Bus(root, node="web1")  # starts after that event: nothing to catch up, lag 0
    app = FseventsMiddleware(hello, bus, status_path="/_fsevents/", recent_events=5)
    status, headers, body = call(app, "/_fsevents.json")
    assert status == "200 OK" and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["node"] == "web1" and doc["lag"] == 0
    web2 = next(n for n in doc["nodes"] if n["node"] == "web2")
    assert web2["events"] == 1 and web2["age"] >= 0 and web2["last_seen"] > 0
    assert [e["topic"] for e in doc["recent"]] == ["cache.invalidate"]
    by_accept = call(app, "/_fsevents", HTTP_ACCEPT="application/json")
    assert by_accept[1]["Content-Type"] == "application/json"
    assert json.loads(by_accept[2])["recent"] == doc["recent"]
    status, headers, page = call(app, "/_fsevents")
    assert headers["Content-Type"].startswith("text/html")
    text = page.decode()
    assert "web1 (this node)" in text and "web2" in text and "cache.invalidate" in text
    assert "<script>" not in text and "&lt;script&gt;" in text  # payloads are escaped
    bus.close()


def test_requests_are_served_when_the_bus_cannot_start(
    bus: Bus, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[int] = []

    def unmounted() -> Bus:
        attempts.append(1)
        raise RootError("the shared volume is not mounted")

    monkeypatch.setattr(bus, "start", unmounted)
    app = FseventsMiddleware(hello, bus, start_retry=3600)
    assert call(app, "/")[2] == b"hello" and call(app, "/")[2] == b"hello"
    assert attempts == [1]  # retried after start_retry, not on every request
    assert "cannot start the fsevents Bus" in caplog.text


def test_options_are_checked(bus: Bus) -> None:
    with pytest.raises(ValueError, match="status_path"):
        FseventsMiddleware(hello, bus, status_path="status")
    with pytest.raises(ValueError, match="recent_events"):
        FseventsMiddleware(hello, bus, recent_events=-1)


def test_init_flask_wraps_a_real_flask_app(bus: Bus) -> None:
    flask = pytest.importorskip("flask")
    web = flask.Flask(__name__)
    web.add_url_rule("/", "index", lambda: "from flask")
    init_flask(web, bus, status_path="/_fsevents")
    client = web.test_client()
    assert client.get("/").data == b"from flask"
    assert client.get("/_fsevents.json").get_json()["node"] == "web1"
    assert web.extensions["fsevents"] is bus and bus.running


def test_a_forked_child_starts_its_own_follower(tmp_path: Path) -> None:
    root, out, ready = tmp_path / "shared", tmp_path / "out", tmp_path / "ready"
    proc = start_worker("fork", str(root), "prefork", str(out), str(ready))
    try:
        pids = wait_lines(ready, 2, 30)
        with Bus(root, node="admin") as admin:
            admin.publish("ping")
        assert proc.wait(30) == 0
        assert sorted(read_lines(out)) == sorted(f"{pid} ping" for pid in pids)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
