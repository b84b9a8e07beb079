"""The bench's output: the machine it ran on, and a table (or JSON) of figures."""

from __future__ import annotations

import os
import platform
from typing import Any

from ..fstype import find_mount
from .common import Figure


def machine(target: str) -> dict[str, Any]:
    """What the numbers depend on: cores, CPU model, the target's file system, the load."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "filesystem": _filesystem(target),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _filesystem(target: str) -> str:
    """The mount holding *target*, as the report names it."""
    mount = find_mount(target)
    return f"{mount.fstype} on {mount.source or 'unknown'} (mounted at {mount.point})"


def to_json(
    figures: list[Figure], info: dict[str, Any], redis_status: str | None
) -> dict[str, Any]:
    return {
        **info,
        "figures": {f.name: f.to_json() for f in figures},
        "redis": redis_status,
    }


def table(figures: list[Figure], info: dict[str, Any], redis_status: str | None) -> str:
    m = info["machine"]
    lines = [
        f"fsevents {info['version']} bench: {info['store']} store at {info['target']}",
        f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['system']}, Python {m['python']}",
        f"volume: {m['filesystem']}; load average before/after: "
        f"{m['load_average']} / {info['load_after']}",
        "",
    ]
    rows = [("figure", "value", "baseline", "ratio", "target", "")]
    for f in figures:
        ratio = ""
        if "ratio" in f.extra:
            ratio = f"{f.extra['ratio']:.2f}"  # the median of paired rounds (publish.py)
        elif f.value is not None and f.baseline:
            ratio = f"{f.value / f.baseline:.2f}"
        rows.append(
            (
                f.name,
                f"{_num(f.value)} {f.unit}",
                "" if f.baseline is None else _num(f.baseline),
                ratio,
                f.target,
                {True: "ok", False: "MISSED", None: ""}[f.ok],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    lines.append("")
    lines.append("baselines:")
    groups: dict[str, list[str]] = {}
    for f in figures:
        if f.baseline_label:
            groups.setdefault(f.baseline_label, []).append(f.name)
    for label, names in groups.items():
        lines.append(f"  {', '.join(names)}: {label}")
    for f in figures:
        if "baseline_without_dir_fsync" in f.extra:
            lines.append(
                f"  {f.name}: the bare loop without the directory fsync does "
                f"{f.extra['baseline_without_dir_fsync']:,} events/s"
            )
        if f.note:
            lines.append(f"  {f.name}: {f.note}")
    if redis_status:
        lines.append(f"redis: {redis_status}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:g}"
