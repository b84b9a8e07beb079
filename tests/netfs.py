"""A real network file system for tests: one sshd on loopback, two sshfs mounts.

``SshfsHarness`` starts a private ``sshd`` (its own config, keys and pid file in a temp
dir, listening on 127.0.0.1 only) and mounts one backing directory twice with sshfs, at
``mount_a`` and ``mount_b``. Two FUSE mounts are two clients with separate caches, so a
file written through ``mount_a`` reaches ``mount_b`` the way it reaches another node of a
farm: late in directory listings (sshfs caches them ~20 s by default), never through
inotify, and POSIX locks do not cross. sshfs keeps its default cache options on purpose:
that is what users run.

This module imports nothing from fsevents, so it works before the package exists.

Pytest use: ``tests/conftest.py`` does ``from netfs import sshfs, shared_dirs  # noqa``
(the ``tests`` dir is on ``sys.path`` under pytest's default import mode). ``sshfs`` is
session-scoped and yields a started harness; ``shared_dirs`` yields a fresh
``SharedDirs(a, b)`` per test: one new directory seen through ``mount_a`` and ``mount_b``.
When the tools are missing the fixtures skip, or fail when ``CI=true`` (CI must run them).
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

SSHD = "/usr/sbin/sshd"
INSTALL_HINT = "sudo .ci/install-netfs.sh  (apt-get install openssh-server sshfs fuse3)"


def wait_for(
    predicate: Callable[[], object], timeout: float, interval: float = 0.02, what: str = ""
) -> object:
    """Poll ``predicate`` until it returns a truthy value; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what or predicate}")
        time.sleep(interval)


def _fusermount() -> str | None:
    # Debian bookworm's fuse3 ships fusermount3 (and a fusermount symlink); fuse 2 ships
    # only fusermount.
    return shutil.which("fusermount") or shutil.which("fusermount3")


def netfs_available() -> str | None:
    """None when sshd, sshfs, fusermount and /dev/fuse are present, else the reason."""
    missing = []
    if not os.access(SSHD, os.X_OK):
        missing.append(f"{SSHD} (openssh-server)")
    if not shutil.which("ssh-keygen"):
        missing.append("ssh-keygen (openssh-client)")
    if not shutil.which("sshfs"):
        missing.append("sshfs")
    if not _fusermount():
        missing.append("fusermount (fuse3)")
    if not os.path.exists("/dev/fuse"):
        missing.append("/dev/fuse (run the container with --device /dev/fuse --cap-add SYS_ADMIN)")
    return "missing " + ", ".join(missing) if missing else None


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def fuse_mounts() -> dict[str, str]:
    """Mount point -> file-system type of every FUSE mount in /proc/self/mountinfo."""
    mounts = {}
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype = right.split(" ", 1)[0]
            if fstype.startswith("fuse"):
                mounts[_unescape_mountinfo(left.split(" ")[4])] = fstype
    return mounts


def is_sshfs_mounted(path: os.PathLike[str] | str) -> bool:
    return fuse_mounts().get(os.fspath(path)) == "fuse.sshfs"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sshd_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _children(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return f.read().strip()
    except OSError:
        return ""


def _terminate(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)


class SshfsHarness:
    """One private sshd on 127.0.0.1 and two sshfs mounts of one backing directory."""

    def __init__(self, *, timeout: float = 20.0, extra_sshfs_options: tuple[str, ...] = ()):
        self.timeout = timeout
        self.extra_sshfs_options = extra_sshfs_options
        self.tmp: Path | None = None
        self.port = 0
        self.startup_seconds = 0.0
        self._sshd: subprocess.Popen[bytes] | None = None
        self._sshfs: dict[str, subprocess.Popen[bytes] | None] = {"a": None, "b": None}

    # -- paths -------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        if self.tmp is None:
            raise RuntimeError("SshfsHarness is not started")
        return self.tmp / name

    @property
    def backing(self) -> Path:
        return self._dir("backing")

    @property
    def mount_a(self) -> Path:
        return self._dir("mnt_a")

    @property
    def mount_b(self) -> Path:
        return self._dir("mnt_b")

    def mount_point(self, which: str) -> Path:
        if which not in ("a", "b"):
            raise ValueError(f"which must be 'a' or 'b', not {which!r}")
        return self._dir("mnt_" + which)

    # -- life cycle --------------------------------------------------------------------
    def __enter__(self) -> SshfsHarness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> SshfsHarness:
        reason = netfs_available()
        if reason:
            raise RuntimeError(f"sshfs harness unavailable: {reason}; install: {INSTALL_HINT}")
        if self.tmp is not None:
            raise RuntimeError("SshfsHarness already started")
        t0 = time.monotonic()
        self.tmp = Path(tempfile.mkdtemp(prefix="fsevents-netfs-")).resolve()
        atexit.register(self.stop)
        try:
            for name in ("backing", "mnt_a", "mnt_b"):
                self._dir(name).mkdir()
            self._make_keys()
            self._start_sshd()
            self.mount("a")
            self.mount("b")
            self._check_cross_visibility()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _make_keys(self) -> None:
        for key in ("host_key", "client_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"fsevents-netfs-{key}",
                 "-f", str(self._dir(key))],
                check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=self.timeout,
            )  # fmt: skip
        shutil.copyfile(self._dir("client_key.pub"), self._dir("authorized_keys"))

    def _start_sshd(self) -> None:
        # /run/sshd is sshd's privilege-separation dir; systemd creates it, containers don't.
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        last_error = ""
        for _attempt in range(3):  # the free port can be taken between probe and bind
            self.port = _free_port()
            config = self._dir("sshd_config")
            config.write_text(
                f"Port {self.port}\n"
                "ListenAddress 127.0.0.1\n"
                f"HostKey {self._dir('host_key')}\n"
                f"PidFile {self._dir('sshd.pid')}\n"
                f"AuthorizedKeysFile {self._dir('authorized_keys')}\n"
                "PubkeyAuthentication yes\n"
                "PasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\n"
                "PermitRootLogin yes\n"
                "StrictModes no\n"
                "UsePAM no\n"
                "UseDNS no\n"
                "PrintMotd no\n"
                "Subsystem sftp internal-sftp\n"
            )
            with open(self._dir("sshd.log"), "ab") as log:
                self._sshd = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(config), "-p", str(self.port)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    # Own process group: stop() also ends per-connection sshd children.
                    start_new_session=True,
                )  # fmt: skip
            sshd = self._sshd
            with contextlib.suppress(TimeoutError):
                wait_for(lambda s=sshd: s.poll() is not None or _sshd_answers(self.port),
                         self.timeout, what="sshd to answer")  # fmt: skip
            if sshd.poll() is None and _sshd_answers(self.port):
                return
            _terminate(self._sshd)
            last_error = self._log_tail("sshd.log")
        raise RuntimeError(f"sshd did not start on 127.0.0.1: {last_error}")

    def _log_tail(self, name: str) -> str:
        try:
            return self._dir(name).read_text(errors="replace")[-2000:].strip()
        except OSError:
            return "(no log)"

    def sshfs_command(self, which: str) -> list[str]:
        options = [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            f"IdentityFile={self._dir('client_key')}",
            "IdentitiesOnly=yes",
            "BatchMode=yes",
            "LogLevel=ERROR",
            # reconnect + keep-alives only matter for long runs; cache options stay default.
            "reconnect",
            "ServerAliveInterval=15",
            "ServerAliveCountMax=3",
            *self.extra_sshfs_options,
        ]
        # -f: stay in the foreground so the harness owns the sshfs process and can kill it.
        return [
            "sshfs", "-f", "-p", str(self.port), "-o", ",".join(options),
            f"{getpass.getuser()}@127.0.0.1:{self.backing}", str(self.mount_point(which)),
        ]  # fmt: skip

    def mount(self, which: str) -> None:
        path = self.mount_point(which)
        if is_sshfs_mounted(path):
            return
        with open(self._dir(f"sshfs_{which}.log"), "ab") as log:
            proc = subprocess.Popen(
                self.sshfs_command(which), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self._sshfs[which] = proc
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: proc.poll() is not None or is_sshfs_mounted(path), self.timeout,
                     what=f"{path} to be mounted")  # fmt: skip
        if proc.poll() is not None or not is_sshfs_mounted(path):
            _terminate(proc)
            self._sshfs[which] = None
            raise RuntimeError(
                f"sshfs mount of {path} failed: {self._log_tail(f'sshfs_{which}.log')}"
            )
        # mountinfo lists the mount as soon as FUSE has it; wait until it answers too.
        wait_for(lambda: os.path.isdir(path), self.timeout, what=f"{path} to answer")

    remount = mount

    def unmount(self, which: str) -> None:
        """Make mount ``which`` vanish (never raises when it is already gone)."""
        path = self.mount_point(which)
        lazy = False
        if is_sshfs_mounted(path):
            fusermount = _fusermount() or "fusermount"
            for cmd in ([fusermount, "-u", str(path)], [fusermount, "-uz", str(path)],
                        ["umount", "-l", str(path)]):  # fmt: skip
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
                if not is_sshfs_mounted(path):
                    break
                lazy = True
        # sshfs -f exits once unmounted. After a lazy unmount of a busy mount it would live
        # until the last open file closes: kill it, so open files fail with ENOTCONN (as
        # when a server goes away) instead of keeping the connection.
        proc = self._sshfs.get(which)
        if proc is not None:
            try:
                proc.wait(0 if lazy else 5)
            except subprocess.TimeoutExpired:
                _terminate(proc)
        self._sshfs[which] = None

    def _check_cross_visibility(self) -> None:
        name = f".harness-probe-{uuid.uuid4().hex}"
        (self.mount_a / name).write_text("probe")

        def visible() -> bool:
            try:
                with open(self.mount_b / name) as f:
                    return f.read() == "probe"
            except FileNotFoundError:
                return False

        wait_for(visible, self.timeout, what="a file written via mnt_a to open via mnt_b")
        (self.mount_a / name).unlink()

    def stop(self) -> None:
        """Unmount both, stop sshd, remove the temp dir. Never raises; safe to repeat."""
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)
        if self.tmp is None:
            return
        for which in ("a", "b"):
            with contextlib.suppress(Exception):  # stop() must go on whatever happens
                self.unmount(which)
        if self._sshd is not None:
            # Let the per-connection sshd children end with their sshfs clients, so the
            # listener reaps them (killed first, they would linger as zombies of init).
            pid = self._sshd.pid
            with contextlib.suppress(TimeoutError):
                wait_for(lambda: not _children(pid), 5.0, what="sshd sessions to end")
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGTERM)
        _terminate(self._sshd)
        self._sshd = None
        if any(is_sshfs_mounted(self.mount_point(w)) for w in ("a", "b")):
            # Never rmtree through a live mount; leave the dir for a human.
            return
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None


class SharedDirs(NamedTuple):
    """One fresh directory as seen through each mount (unpacks as ``a, b``)."""

    a: Path
    b: Path


def _shared_dirs(harness: SshfsHarness, label: str) -> Iterator[SharedDirs]:
    name = f"{label[:40]}-{uuid.uuid4().hex[:12]}"
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    (harness.mount_a / name).mkdir()
    # Open by name: a stat through mount_b sees the new dir at once (a listing might not).
    wait_for((harness.mount_b / name).is_dir, harness.timeout, what=f"{name} via mnt_b")
    try:
        yield SharedDirs(harness.mount_a / name, harness.mount_b / name)
    finally:
        # Remove through the backing dir: local, fast, and works if a test unmounted a mount.
        shutil.rmtree(harness.backing / name, ignore_errors=True)


try:
    import pytest
except ImportError:  # the harness itself works without pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def sshfs() -> Iterator[SshfsHarness]:
        """A started SshfsHarness shared by the session; skipped (failed in CI) if absent."""
        reason = netfs_available()
        if reason is None:
            harness = SshfsHarness()
            try:
                harness.start()
            except (OSError, RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
                reason = f"sshfs harness failed to start: {exc}"
        else:
            reason = f"sshfs harness unavailable: {reason}; install: {INSTALL_HINT}"
        if reason is not None:
            if os.environ.get("CI") == "true":
                pytest.fail(reason, pytrace=False)
            pytest.skip(reason)
        try:
            yield harness
        finally:
            harness.stop()

    @pytest.fixture
    def shared_dirs(sshfs: SshfsHarness, request: pytest.FixtureRequest) -> Iterator[SharedDirs]:
        """A fresh directory unique to this test, as ``SharedDirs(a=via mnt_a, b=via mnt_b)``."""
        yield from _shared_dirs(sshfs, request.node.name)


__all__ = [
    "INSTALL_HINT",
    "SharedDirs",
    "SshfsHarness",
    "fuse_mounts",
    "is_sshfs_mounted",
    "netfs_available",
    "wait_for",
]
if pytest is not None:
    __all__ += ["shared_dirs", "sshfs"]
