#!/usr/bin/env bash
# Install what tests/netfs.py needs for the real network-file-system tests:
# an OpenSSH server (sshd with internal-sftp), the sshfs FUSE client and
# fusermount. Idempotent: does nothing when everything is already present.
# Debian bookworm package names: openssh-server, sshfs, fuse3 (fuse3 ships
# `fusermount3`; older systems' `fuse` ships `fusermount` — the harness
# accepts either).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing=()
have sshd || missing+=(sshd)
have sshfs || missing+=(sshfs)
have fusermount || have fusermount3 || missing+=(fusermount)

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-netfs: missing ${missing[*]}; installing openssh-server sshfs fuse3" >&2
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=sudo
    else
        SUDO=
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get update; then
        echo "install-netfs: apt-get update failed (no network or no apt?)" >&2
        exit 1
    fi
    if ! $SUDO apt-get install -y --no-install-recommends openssh-server sshfs fuse3; then
        echo "install-netfs: apt-get install openssh-server sshfs fuse3 failed" >&2
        exit 1
    fi
fi

# sshd refuses to start without its privilege-separation directory, which
# is normally created by systemd (RuntimeDirectory) and so is absent in
# containers.
${SUDO:-} mkdir -p /run/sshd
chmod 0755 /run/sshd 2>/dev/null || true

fail=0
have sshd || { echo "install-netfs: sshd still missing after install" >&2; fail=1; }
have sshfs || { echo "install-netfs: sshfs still missing after install" >&2; fail=1; }
have fusermount || have fusermount3 || {
    echo "install-netfs: fusermount/fusermount3 still missing after install" >&2; fail=1; }
if [ ! -e /dev/fuse ]; then
    echo "install-netfs: /dev/fuse is absent: run the container with --device /dev/fuse" \
         "--cap-add SYS_ADMIN (or load the fuse kernel module)" >&2
    fail=1
fi
[ "$fail" -eq 0 ] || exit 1
echo "install-netfs: sshd, sshfs and fusermount are available"
