"""``doctor``: the volume probes, their verdicts, the exit status, and the cross-node mode."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from netfs import SharedDirs
from procs import doctor_peers, doctor_peers_results, fsevents_cli, start_doctor

from fsevents import doctor
from fsevents.doctor import check_clock, files_store_safe, run_checks
from fsevents.fstype import find_mount
from fsevents.mounts import listing_cache_advice


def _checks(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["checks"]}


def test_a_local_directory_is_safe_for_every_store(tmp_path: Path) -> None:
    done = fsevents_cli("doctor", "--root", str(tmp_path / "events"), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = _checks(json.loads(done.stdout))
    assert [checks[n]["status"] for n in ("writable", "link", "fsync")] == ["ok"] * 3
    assert checks["filesystem"]["details"]["network"] is False
    assert checks["watcher"]["details"]["seen"] is True
    assert checks["stores"]["details"]["safe"] == ["files", "sqlite"]
    assert not list((tmp_path / "events" / "doctor").iterdir()), "probe files are removed"
    text = fsevents_cli("doctor", "--root", str(tmp_path / "events"))
    assert "verdict: the files store is safe here" in text.stdout


def test_an_unusable_target_fails_with_exit_1(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    done = fsevents_cli("doctor", "--root", str(tmp_path / "file"))
    assert done.returncode == 1
    assert "[FAIL] writable" in done.stdout and "NOT safe" in done.stdout


def test_without_hard_links_names_are_taken_by_rename_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    checks = {c.name: c for c in run_checks(tmp_path, watch_timeout=2)}
    assert (
        checks["link"].status == "warn"
        and "rename after an existence check" in checks["link"].summary
    )
    assert files_store_safe(list(checks.values()))


def test_a_clock_off_the_volume_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = time.time
    monkeypatch.setattr(doctor.time, "time", lambda: real() + 600)
    check = check_clock(tmp_path)
    assert check.status == "warn" and "run NTP" in check.summary
    assert abs(check.details["offset"] + 600) < 2, "the volume is 600 s behind this clock"


MOUNTINFO = (
    "36 25 0:32 / /mnt/nfs rw,relatime shared:1 - nfs4 srv:/export rw,vers=4.2,{opts}\n"
    "37 25 0:33 / /mnt/ssh rw,nosuid - fuse.sshfs me@host:/data rw,user_id=0\n"
    "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
)


@pytest.mark.parametrize(
    "opts, status, negative",
    [("hard,proto=tcp", "warn", True), ("lookupcache=pos,actimeo=1", "ok", False)],
)
def test_nfs_mount_options_get_advice(
    tmp_path: Path, opts: str, status: str, negative: bool
) -> None:
    info = MOUNTINFO.format(opts=opts)
    mount = find_mount(Path("/mnt/nfs/events"), mountinfo=info)
    assert (mount.fstype, mount.point, mount.network) == ("nfs4", "/mnt/nfs", True)
    got, _, details = listing_cache_advice(mount)
    assert (got, details["negative_lookups_cached"]) == (status, negative)
    if negative:
        assert any("lookupcache=positive" in line for line in details["advice"])
    assert find_mount(Path("/mnt/ssh/x"), mountinfo=info).fstype == "fuse.sshfs"
    assert find_mount(Path("/home"), mountinfo=info).network is False


def test_peer_mode_on_one_local_directory(tmp_path: Path) -> None:
    for checks in doctor_peers_results(doctor_peers(tmp_path, tmp_path)):
        assert checks["peer-name"]["status"] == "ok"
        assert checks["peer-listing"]["details"]["listing_lag_seconds"] < 1.0
        assert abs(checks["peer-clock"]["details"]["offset_seconds"]) < 1.0
    assert not list((tmp_path / "doctor").iterdir()), "both nodes removed their files"


def test_peer_mode_fails_when_the_peer_does_not_answer(tmp_path: Path) -> None:
    alone = start_doctor(tmp_path, "node-a", "node-b", "--peer-timeout", "0.5")
    out = json.loads(alone.communicate(timeout=60)[0])
    assert alone.returncode == 1
    assert "did not say hello" in _checks(out)["peer"]["summary"]


def test_on_sshfs_the_files_store_is_safe_and_sqlite_is_not(shared_dirs: SharedDirs) -> None:
    done = fsevents_cli("doctor", "--root", str(shared_dirs.a), "--json")
    assert done.returncode == 0, done.stdout
    checks = _checks(json.loads(done.stdout))
    assert checks["filesystem"]["details"]["fstype"] == "fuse.sshfs"
    assert checks["stores"]["details"]["safe"] == ["files"]
    assert "WAL" in checks["stores"]["details"]["why"]["sqlite"]
    assert "20 s" in checks["caches"]["summary"]
