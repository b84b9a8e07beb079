"""Redis for comparison (``--redis URL``): pub/sub and Streams, same latency and throughput.

The ``redis`` client is an optional extra (``pip install 'fsevents[redis]'``), imported
only here. Without it, or without a reachable server, the phase reports why in one line
instead of failing the whole bench. Each figure's baseline is the matching fsevents figure
of the same run, so the two sit side by side.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from typing import Any

from .common import Figure, Settings, Worker, percentile, progress

#: redis figure -> the fsevents figure it is compared with
_COUNTERPART = {
    "publish.single": "publish.single.1proc",
    "publish.many": "publish.many.1proc",
    "latency.p50": "latency.watch.p50",
    "latency.p99": "latency.watch.p99",
}


class RedisUnavailable(Exception):
    pass


def connect(url: str) -> Any:
    try:
        import redis
    except ImportError:
        raise RedisUnavailable(
            "the redis client is not installed; pip install 'fsevents[redis]'"
        ) from None
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise RedisUnavailable(f"cannot reach {url}: {exc}; is redis-server running?") from None
    return client


def run(settings: Settings, url: str, ours: list[Figure]) -> tuple[list[Figure], str]:
    try:
        client = connect(url)
    except RedisUnavailable as exc:
        progress(f"redis unavailable: {exc}")
        return [], f"redis unavailable: {exc}"
    key = f"fsevents-bench-{secrets.token_hex(4)}"
    by_name = {f.name: f for f in ours}
    figures = []
    try:
        count = 300 if settings.quick else 2000
        for kind in ("pubsub", "streams"):
            progress(f"redis {kind}: throughput, {count} events, single and pipelined")
            for label, batch in (("publish.single", 1), ("publish.many", 100)):
                rate = _throughput(client, kind, key, count, batch)
                figures.append(_figure(f"redis.{kind}.{label}", rate, "events/s", label, by_name))
            latency_count = 40 if settings.quick else 300
            progress(f"redis {kind}: latency, {latency_count} events")
            latencies = _latencies(settings, url, kind, key, latency_count)
            for label, fraction in (("latency.p50", 0.5), ("latency.p99", 0.99)):
                value = percentile(latencies, fraction) * 1000
                figures.append(_figure(f"redis.{kind}.{label}", value, "ms", label, by_name))
    finally:
        client.delete(key)
        client.close()
    return figures, f"measured at {url}"


def _figure(name: str, value: float, unit: str, label: str, ours: dict[str, Figure]) -> Figure:
    counterpart = ours.get(_COUNTERPART[label])
    return Figure(
        name,
        round(value, 2) if unit == "ms" else round(value),
        unit,
        baseline=counterpart.value if counterpart else None,
        baseline_label=f"fsevents {_COUNTERPART[label]}, this run" if counterpart else "",
        note="" if counterpart else "its fsevents counterpart was not measured in this run",
    )


def _throughput(client: Any, kind: str, key: str, count: int, batch: int) -> float:
    body = json.dumps({"key": "products", "t": 0.0})
    started = time.perf_counter()
    for _ in range(0, count, batch):
        pipe = client.pipeline(transaction=False) if batch > 1 else client
        for _ in range(batch):
            if kind == "pubsub":
                pipe.publish(key, body)
            else:
                pipe.xadd(key, {"body": body}, maxlen=10_000, approximate=True)
        if batch > 1:
            pipe.execute()
    return count / (time.perf_counter() - started)


def _latencies(settings: Settings, url: str, kind: str, key: str, count: int) -> list[float]:
    args = ["--url", url, "--kind", kind, "--key", key, "--count", str(count)]
    follower = Worker("redis-follow", *args, state_dir=settings.scratch)
    client = connect(url)
    try:
        follower.ready()
        follower.go()
        for _ in range(count):
            time.sleep(0.01)
            body = json.dumps({"t": time.monotonic()})
            if kind == "pubsub":
                client.publish(key, body)
            else:
                client.xadd(key, {"body": body}, maxlen=10_000, approximate=True)
        result: list[float] = follower.result(timeout=60 + count * 0.05)["latencies"]
        return result
    finally:
        follower.close()
        client.close()


def follow(args: argparse.Namespace) -> None:
    """Worker mode ``redis-follow``: receive COUNT messages, print their latencies."""
    client = connect(args.url)
    latencies: list[float] = []
    last_id = "$"
    if args.kind == "pubsub":
        pubsub = client.pubsub()
        pubsub.subscribe(args.key)
        pubsub.get_message(timeout=10.0)  # the confirmation: subscribed before "ready"
    elif client.exists(args.key):
        last_id = client.xinfo_stream(args.key)["last-generated-id"]
    print(json.dumps({"ready": True}), flush=True)
    input()
    deadline = time.monotonic() + args.timeout
    while len(latencies) < args.count and time.monotonic() < deadline:
        if args.kind == "pubsub":
            message = pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == "message":
                latencies.append(time.monotonic() - json.loads(message["data"])["t"])
            continue
        for _, entries in client.xread({args.key: last_id}, block=1000, count=1000) or []:
            for entry_id, fields in entries:
                last_id = entry_id
                latencies.append(time.monotonic() - json.loads(fields[b"body"])["t"])
    print(json.dumps({"latencies": latencies}), flush=True)
