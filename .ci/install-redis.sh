#!/usr/bin/env bash
# System package for the Redis comparison test of `fsevents bench --redis` (tests/test_bench.py):
# the test starts its own redis-server on a free loopback port, so no service is enabled here.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server
