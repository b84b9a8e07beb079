"""WSGI middleware: one running Bus per worker process, and an optional status page.

Pre-fork servers (gunicorn, uWSGI) import the application in a master process and fork the
workers from it when asked to preload; threads do not survive fork(). The Bus therefore is not
started when the application is built, but on the first request each worker serves: ``Bus``
forgets a follower thread inherited from a fork (``os.register_at_fork``), so ``start()`` in
the worker starts a new one at the position the parent had reached.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from .bus import Bus
from .errors import FseventsError
from .status import DEFAULT_RECENT_EVENTS, collect, render_html

logger = logging.getLogger(__name__)

DEFAULT_STATUS_PATH = "/_fsevents"
DEFAULT_START_RETRY = 10.0

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class FseventsMiddleware:
    """Wrap *app*: start *bus* in each worker on its first request; serve the status page.

    With *status_path* (e.g. ``"/_fsevents"``), that path answers with an HTML page and
    ``<status_path>.json`` (or ``Accept: application/json``) with JSON: this node, the known
    nodes with last-seen time and lag, and the *recent_events* newest events. The page shows
    node names, hosts and event payloads: mount it only where operators can reach it.

    If the Bus cannot start (the volume is not mounted, a node-name conflict), requests are
    still served, the error is logged, and starting is retried after *start_retry* seconds:
    a shared-volume hiccup must not take the site down.
    """

    def __init__(
        self,
        app: WSGIApp,
        bus: Bus,
        *,
        status_path: str | None = None,
        recent_events: int = DEFAULT_RECENT_EVENTS,
        start_retry: float = DEFAULT_START_RETRY,
    ) -> None:
        if status_path is not None and not status_path.startswith("/"):
            raise ValueError(f"status_path must start with '/', got {status_path!r}")
        if recent_events < 0:
            raise ValueError(f"recent_events must be >= 0, got {recent_events!r}")
        self.app, self.bus = app, bus
        self.status_path = (status_path.rstrip("/") or "/") if status_path else None
        self.recent_events = recent_events
        self.start_retry = start_retry
        self._next_start = 0.0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        self._ensure_started()
        path = environ.get("PATH_INFO") or "/"
        if self.status_path is not None and path in (self.status_path, self.status_path + ".json"):
            wants_json = path.endswith(".json") or "application/json" in environ.get(
                "HTTP_ACCEPT", ""
            )
            return self._status(start_response, wants_json)
        return self.app(environ, start_response)

    def _ensure_started(self) -> None:
        if time.monotonic() < self._next_start:
            return
        try:
            self.bus.start()  # idempotent; in a freshly forked worker it starts the follower
        except (FseventsError, OSError) as exc:
            self._next_start = time.monotonic() + self.start_retry
            logger.error(
                "cannot start the fsevents Bus of node %r (%s); serving requests without it "
                "(caches and settings are not kept in sync) and retrying in %.0fs",
                self.bus.node,
                exc,
                self.start_retry,
            )

    def _status(self, start_response: StartResponse, wants_json: bool) -> list[bytes]:
        doc = collect(self.bus, recent=self.recent_events)
        if wants_json:
            body, kind = json.dumps(doc, indent=2).encode(), "application/json"
        else:
            body, kind = render_html(doc).encode(), "text/html; charset=utf-8"
        start_response(
            "200 OK",
            [
                ("Content-Type", kind),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]


def init_flask(flask_app: Any, bus: Bus, **options: Any) -> FseventsMiddleware:
    """Wrap a Flask app's ``wsgi_app`` and keep *bus* in ``app.extensions["fsevents"]``.

    Takes the same keyword options as FseventsMiddleware. Flask is not imported: any object
    with a ``wsgi_app`` attribute and an ``extensions`` dict works.
    """
    middleware = FseventsMiddleware(flask_app.wsgi_app, bus, **options)
    flask_app.wsgi_app = middleware
    flask_app.extensions["fsevents"] = bus
    return middleware
