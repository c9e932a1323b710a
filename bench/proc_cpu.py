"""CPU seconds of process groups from /proc: where a run's CPU went, part by part."""

from __future__ import annotations

import os
import resource
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(path: Path) -> list[str] | None:
    try:
        text = path.read_text()
    except OSError:  # gone between the listing and the read
        return None
    return text[text.rindex(")") + 2 :].split()  # the fields after the command name


def group_cpu_s(pgid: int) -> dict[str, float]:
    """CPU of the living processes in process group `pgid`: `own` (user + system) and
    `children` (the reaped children's, e.g. job processes started in sessions of their own).
    A child's CPU counts once: in its own figures while it lives, in its parent's after."""
    own = children = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        fields = _stat(proc / "stat")
        # Fields after the name: state ppid pgrp ...; utime stime cutime cstime at 11-14.
        if fields is None or int(fields[2]) != pgid:
            continue
        own += int(fields[11]) + int(fields[12])
        children += int(fields[13]) + int(fields[14])
    return {"own": own / TICK, "children": children / TICK}


def self_cpu_s() -> float:
    """This process's CPU (the load's clients, the push proxies, the waiting)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before.get(k, 0.0), 2) for k in after}
