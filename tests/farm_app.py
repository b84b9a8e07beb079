"""The WSGI app the gunicorn farm test serves (``gunicorn farm_app:application``).

Every response is JSON with this worker's pid, so that a test can tell the workers apart.
``/`` serves an "expensive" value cached per worker (read from the file $FARM_DATA on a miss)
and the shared settings document "site"; ``/set-value?v=X`` writes X to the data file and
triggers the "value" signal; ``/set-greeting?g=X`` updates the settings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import fsevents

DATA = Path(os.environ["FARM_DATA"])

bus = fsevents.Bus(os.environ["FSEVENTS_ROOT"])
signals = fsevents.Signals(bus)
settings = fsevents.SharedSettings(bus, "site", default={"greeting": "hello"})
cache: dict[str, str] = signals.attach({})


def expensive_value() -> str:
    if "value" not in cache:
        cache["value"] = DATA.read_text()
    return cache["value"]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    path = environ.get("PATH_INFO", "/")
    if path == "/set-value":
        DATA.write_text(query["v"])
        signals.trigger("value")
    elif path == "/set-greeting":
        settings.modify(lambda doc: {**doc, "greeting": query["g"]})
    body = json.dumps(
        {
            "pid": os.getpid(),
            "node": bus.node,
            "value": expensive_value(),
            "greeting": settings.get("greeting"),
            "settings_version": settings.version,
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


application = fsevents.FseventsMiddleware(app, bus, status_path="/_fsevents")
