"""The ``settings`` and ``feature`` commands, tested by running them."""

from __future__ import annotations

import json
from pathlib import Path

from procs import fsevents_cli


def test_settings_set_show_and_conflict(root: Path) -> None:
    ok = fsevents_cli("settings", "set", "site", '{"theme": "dark"}', "--root", str(root))
    assert (ok.returncode, ok.stdout) == (0, "1\n")
    shown = fsevents_cli("settings", "show", "site", "--root", str(root))
    assert json.loads(shown.stdout) == {"name": "site", "version": 1, "value": {"theme": "dark"}}
    stale = fsevents_cli(
        "settings", "set", "site", "{}", "--expected-version", "0", "--root", str(root)
    )
    assert stale.returncode == 2 and "version 1 was written by another" in stale.stderr
    bad = fsevents_cli("settings", "set", "site", "{oops", "--root", str(root))
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1  # one line, no traceback


def test_feature_enable_disable_list(root: Path) -> None:
    for args in (("enable", "search"), ("enable", "checkout"), ("disable", "search")):
        assert fsevents_cli("feature", *args, "--root", str(root)).returncode == 0
    listed = fsevents_cli("feature", "list", "--root", str(root))
    assert listed.stdout == "checkout\n"
    assert fsevents_cli("feature", "list", "--name", "other", "--root", str(root)).stdout == ""
