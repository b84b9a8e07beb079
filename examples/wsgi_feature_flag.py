"""A plain WSGI app (wsgiref, no framework) whose behaviour follows a shared feature flag.

Run it (and as many more as you like, on other ports or machines sharing the directory)::

    python examples/wsgi_feature_flag.py --root /tmp/fsevents-demo --port 8001

Then flip the flag from anywhere that sees the directory, and watch every server change::

    curl 127.0.0.1:8001/                                   # "hello from ..."
    python -m fsevents feature enable shout --root /tmp/fsevents-demo
    curl 127.0.0.1:8001/                                   # "HELLO FROM ..."
    python -m fsevents settings set site '{"greeting": "bonjour"}' --root /tmp/fsevents-demo

The server prints each change as it arrives (``on_change`` callbacks).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

import fsevents


def build_app(bus: fsevents.Bus) -> fsevents.FseventsMiddleware:
    features = fsevents.Features(bus)
    site = fsevents.SharedSettings(bus, "site", default={"greeting": "hello"})
    features.on_change(lambda flag, on: print(f"feature {flag!r} is now {'on' if on else 'off'}"))
    site.on_change(lambda old, new: print(f"settings 'site': {old!r} -> {new!r}"))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        text = f"{site.get('greeting', 'hello')} from {bus.node} (pid {os.getpid()})"
        if features.is_enabled("shout"):
            text = text.upper()
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return [text.encode() + b"\n"]

    return fsevents.FseventsMiddleware(app, bus, status_path="/_fsevents")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="shared directory (default: $FSEVENTS_ROOT, else local)")
    parser.add_argument("--node", help="node name (default: $FSEVENTS_NODE, else host name)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    with fsevents.Bus(args.root, node=args.node) as bus:
        server = make_server(args.host, args.port, build_app(bus))
        print(f"serving on http://{args.host}:{args.port}/ (status: /_fsevents), node {bus.node}")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


if __name__ == "__main__":
    main()
