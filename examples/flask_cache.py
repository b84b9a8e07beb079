"""A Flask app whose workers each cache an expensive page, invalidated farm-wide by fsevents.

Run it under gunicorn (two workers; each has its own cache), from the repository root::

    export FSEVENTS_ROOT=/tmp/fsevents-demo
    gunicorn -w 2 -b 127.0.0.1:8000 --chdir examples flask_cache:app

or with Flask's development server: ``python examples/flask_cache.py``. Then:

- ``curl 127.0.0.1:8000/`` -- the report: computed once per worker, then served from its cache
- ``curl 127.0.0.1:8000/invalidate`` -- every worker of every node drops it at once
- ``curl '127.0.0.1:8000/greeting?text=Bonjour'`` -- a shared setting every worker follows
- ``http://127.0.0.1:8000/_fsevents`` -- the status page (``/_fsevents.json`` for JSON)

Start a second instance with another node name (``FSEVENTS_NODE=web2``, another port, same
FSEVENTS_ROOT) to see invalidations and settings cross instances; examples/farm.py does that.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import cachetools
from flask import Flask, jsonify, request

import fsevents

app = Flask(__name__)
bus = fsevents.Bus(os.environ.get("FSEVENTS_ROOT"))
signals = fsevents.Signals(bus)
settings = fsevents.SharedSettings(bus, "site", default={"greeting": "Hello"})
# cachetools caches are not thread-safe and eviction runs on the Bus's thread: share a lock.
cache_lock = threading.Lock()
report_cache: cachetools.TTLCache[str, dict[str, Any]] = signals.attach(
    cachetools.TTLCache(maxsize=100, ttl=3600), lock=cache_lock
)
fsevents.init_flask(app, bus, status_path="/_fsevents")


def expensive_report() -> dict[str, Any]:
    with cache_lock:
        cached = report_cache.get("report")
    if cached is not None:
        return {**cached, "cached": True}
    time.sleep(0.2)  # stands for a slow query
    report = {"computed_at": time.time(), "computed_by": os.getpid()}
    with cache_lock:
        report_cache["report"] = report
    return {**report, "cached": False}


@app.get("/")
def index() -> Any:
    return jsonify(
        node=bus.node,
        pid=os.getpid(),
        greeting=settings.get("greeting"),
        report=expensive_report(),
    )


@app.get("/invalidate")
def invalidate() -> Any:
    event = signals.trigger("report")
    return jsonify(invalidated="report", event=event.id)


@app.get("/greeting")
def greeting() -> Any:
    text = request.args.get("text", "Hello")
    version = settings.modify(lambda doc: {**doc, "greeting": text})
    return jsonify(greeting=text, version=version)


if __name__ == "__main__":
    app.run(port=int(os.environ.get("PORT", "8000")))
