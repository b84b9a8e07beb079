"""``python -m fsevents bench``: what a volume can carry, each figure next to its bare baseline.

Phases (one module each): publish throughput (:mod:`.publish`), publish-to-handler latency
(:mod:`.latency`), catch-up and peak memory (:mod:`.catchup`), idle cost and poll cost
(:mod:`.idle`), and Redis for comparison (:mod:`.redis_phase`). The processes being measured
run as ``python -m fsevents.bench.worker ...`` (:mod:`.worker`); the bare loops they are
compared with live in :mod:`.baselines`.
"""
