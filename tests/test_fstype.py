"""File-system detection from mountinfo: what decides whether SQLite may use WAL."""

from __future__ import annotations

from pathlib import Path

import pytest
from netfs import SharedDirs

from fsevents.fstype import (
    filesystem_type,
    is_network_filesystem,
    is_network_type,
    parse_mountinfo,
    unescape_mountinfo,
)

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:50 / /mnt/share rw,relatime shared:1 - nfs4 srv:/export rw,vers=4.2
41 40 0:51 / /mnt/share/local\\040disk rw - ext4 /dev/vdb rw
42 27 0:52 / /mnt/sshfs rw,nosuid - fuse.sshfs user@host:/data rw
43 27 0:53 / /mnt/sharelike rw - xfs /dev/vdc rw
44 27 0:54 / /var/lib/containers rw - fuse.fuse-overlayfs fuse-overlayfs rw
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/home/user/events.db", "ext4"),
        ("/mnt/share/events.db", "nfs4"),
        ("/mnt/share/deep/new/dir/events.db", "nfs4"),
        ("/mnt/share/local disk/events.db", "ext4"),  # longest prefix, \\040 unescaped
        ("/mnt/sharelike/events.db", "xfs"),  # a prefix of the name is not a parent
        ("/mnt/sshfs", "fuse.sshfs"),
        ("/var/lib/containers/x.db", "fuse.fuse-overlayfs"),
    ],
)
def test_the_longest_mount_point_holding_a_path_wins(path: str, expected: str) -> None:
    assert filesystem_type(path, mountinfo=MOUNTINFO) == expected


def test_which_types_count_as_network() -> None:
    for fstype in ("nfs", "nfs4", "cifs", "smb3", "9p", "ceph", "glusterfs", "lustre"):
        assert is_network_type(fstype), fstype
    assert is_network_type("fuse.sshfs") and is_network_type("fuse.s3fs")
    for fstype in ("ext4", "xfs", "btrfs", "tmpfs", "overlay", "fuse.fuse-overlayfs", "unknown"):
        assert not is_network_type(fstype), fstype
    assert is_network_filesystem("/mnt/share/x.db", mountinfo=MOUNTINFO)
    assert not is_network_filesystem("/mnt/share/local disk/x.db", mountinfo=MOUNTINFO)


def test_mountinfo_parsing_is_robust() -> None:
    assert unescape_mountinfo(r"/a\040b\011c\134d\0") == "/a b\tc\\d\\0"
    assert parse_mountinfo("garbage\n\n1 2 3\n" + MOUNTINFO)["/mnt/sshfs"] == "fuse.sshfs"


def test_real_mounts(tmp_path: Path, shared_dirs: SharedDirs) -> None:
    assert not is_network_filesystem(tmp_path / "not" / "yet" / "created.db")
    assert filesystem_type(shared_dirs.a / "events.db") == "fuse.sshfs"
    assert is_network_filesystem(shared_dirs.b)
