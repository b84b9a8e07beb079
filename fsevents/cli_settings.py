"""``fsevents settings`` and ``fsevents feature``: read and change shared settings and flags."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .bus import Bus
from .features import DEFAULT_FEATURES_NAME, Features
from .settings import SharedSettings


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the two commands to the ``fsevents`` parser's subparsers."""
    settings = sub.add_parser("settings", parents=[common], help="show or change shared settings")
    action = settings.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = action.add_parser("show", parents=[common], help="print the newest version as JSON")
    show.add_argument("name", help="settings document name, e.g. site")
    show.set_defaults(run=cmd_settings_show)
    put = action.add_parser("set", parents=[common], help="write a new version (VALUE is JSON)")
    put.add_argument("name", help="settings document name, e.g. site")
    put.add_argument("value", help='the whole new document as JSON, e.g. \'{"theme": "dark"}\'')
    put.add_argument(
        "--expected-version",
        type=int,
        metavar="N",
        help="fail with a conflict unless the newest version is N (default: the newest)",
    )
    put.set_defaults(run=cmd_settings_set)

    feature = sub.add_parser("feature", parents=[common], help="enable, disable or list flags")
    verb = feature.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, helptext in (("enable", "turn a flag on"), ("disable", "turn a flag off")):
        flag = verb.add_parser(name, parents=[common], help=f"{helptext} everywhere")
        flag.add_argument("flag", help="feature name, e.g. new-checkout")
        _features_name(flag)
        flag.set_defaults(run=cmd_feature_set, enabled=name == "enable")
    listing = verb.add_parser("list", parents=[common], help="print the enabled flags")
    _features_name(listing)
    listing.set_defaults(run=cmd_feature_list)


def _features_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name",
        default=DEFAULT_FEATURES_NAME,
        help=f"settings document holding the flags (default {DEFAULT_FEATURES_NAME})",
    )


def _bus(args: argparse.Namespace) -> Bus:
    return Bus(args.root, node=args.node, state_dir=args.state_dir, create=args.create)


def cmd_settings_show(args: argparse.Namespace) -> int:
    with _bus(args) as bus:
        settings = SharedSettings(bus, args.name)
        doc = {"name": settings.name, "version": settings.version, "value": settings.value}
    print(json.dumps(doc, ensure_ascii=False))
    return 0


def cmd_settings_set(args: argparse.Namespace) -> int:
    try:
        value = json.loads(args.value)
    except ValueError as exc:
        raise ValueError(
            f"VALUE is not valid JSON ({exc}); pass the whole document, e.g. "
            '\'{"greeting": "bonjour"}\''
        ) from None
    bus = _bus(args)
    try:
        settings = SharedSettings(bus, args.name)
        version = settings.update(value, expected_version=args.expected_version)
    finally:
        bus.close()
    print(version)
    return 0


def cmd_feature_set(args: argparse.Namespace) -> int:
    bus = _bus(args)
    try:
        version = Features(bus, name=args.name).set(args.flag, args.enabled)
    finally:
        bus.close()
    print(version)
    return 0


def cmd_feature_list(args: argparse.Namespace) -> int:
    bus = _bus(args)
    try:
        enabled = Features(bus, name=args.name).enabled()
    finally:
        bus.close()
    for flag in enabled:
        print(flag)
    return 0
