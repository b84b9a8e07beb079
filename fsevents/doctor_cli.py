"""``fsevents doctor``: the command line of doctor.py (single node) and doctor_peer.py."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .bus import default_root
from .doctor import FAIL, files_store_safe, render, run_checks
from .doctor_peer import run_peer
from .nodes import default_node_name


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``doctor`` to the CLI's subcommands."""
    doctor = sub.add_parser("doctor", parents=[common], help="probe the volume; exit 0 if safe")
    doctor.add_argument("--json", action="store_true", help="print one JSON document")
    doctor.add_argument(
        "--peer",
        metavar="NODE",
        help="cross-node mode: measure visibility with NODE running `doctor --peer` at once",
    )
    doctor.add_argument(
        "--watch-timeout", type=_positive_float, default=2.0, metavar="S",
        help="how long the watcher self-test waits (default 2)",
    )  # fmt: skip
    doctor.add_argument(
        "--peer-timeout", type=_positive_float, default=60.0, metavar="S",
        help="how long to wait for the peer to answer (default 60)",
    )  # fmt: skip
    doctor.add_argument(
        "--listing-timeout", type=_positive_float, default=120.0, metavar="S",
        help="how long to wait for a listing to show the peer's file (default 120)",
    )  # fmt: skip
    doctor.add_argument(
        "--pings", type=_pings, default=5, metavar="N",
        help="ping-pong round trips with the peer, 1-100 (default 5)",
    )  # fmt: skip
    doctor.set_defaults(run=cmd_doctor)


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def _pings(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 100, got {text}")
    return value


def cmd_doctor(args: argparse.Namespace) -> int:
    root = Path(args.root).expanduser() if args.root else default_root()
    checks = run_checks(root, watch_timeout=args.watch_timeout)
    if args.peer and files_store_safe(checks):
        node = args.node or default_node_name()
        checks += run_peer(
            root, node, args.peer, pings=args.pings, timeout=args.peer_timeout,
            listing_timeout=args.listing_timeout,
        )  # fmt: skip
    ok = files_store_safe(checks) and all(c.status != FAIL for c in checks)
    if args.json:
        doc = {"target": str(root), "ok": ok, "checks": [c.to_json() for c in checks]}
        print(json.dumps(doc, indent=2))
    else:
        print(render(root, checks))
        print("verdict: the files store is safe here" if ok else "verdict: NOT safe, see above")
    return 0 if ok else 1
