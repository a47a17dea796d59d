"""Crash points for the fault-injection tests: `RECON_CRASH_AT=<point>[#<n>]` kills the process there.

Each point sits where a crash is hardest to survive (inside a transaction, between a server's
acceptance and our log, before a file is swapped in). The test suite kills `recon run` at each
one with SIGKILL, as a power cut or the OOM killer would, then checks that the next run gives
exactly the warehouse an uninterrupted run gives. Unset (always, outside those tests), a point
costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_hits: Counter[str] = Counter()


def _target() -> tuple[str, int] | None:
    value = os.environ.get("RECON_CRASH_AT")
    if not value:
        return None
    point, _, nth = value.partition("#")
    return point, int(nth or 1)


def crash_point(name: str) -> None:
    """Kill this process (SIGKILL, no cleanup) when `RECON_CRASH_AT` names this point."""
    target = _target()
    if target is None or target[0] != name:
        return
    _hits[name] += 1
    if _hits[name] == target[1]:
        os.kill(os.getpid(), signal.SIGKILL)


def crash_targets(prefix: str) -> bool:
    """Whether a crash is asked for at a point starting with `prefix` (to install costly hooks)."""
    target = _target()
    return target is not None and target[0].startswith(prefix)
