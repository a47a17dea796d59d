"""Progress of long stages (counts and time left): a rich bar on a terminal, log lines in Dagster.

Stage code reports without knowing who listens: `with track("matching", total, "条流水") as t:
t.update(done)` (or `start_tracking(...)` ... `close()` where a `with` block does not fit). Nothing is shown unless the caller installed a reporter (`reporting(...)`):
`recon run` installs `TerminalProgress` when stderr is a terminal (cron logs stay clean), the
Dagster assets install `LogProgress` over the run's logger.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Protocol


class Reporter(Protocol):
    def start(self, stage: str, total: int | None, unit: str) -> None: ...
    def update(self, done: int, total: int | None = None) -> None: ...
    def finish(self) -> None: ...


_REPORTER: ContextVar[Reporter | None] = ContextVar("recon_progress", default=None)


class Tracker:
    def __init__(self, reporter: Reporter | None):
        self._reporter = reporter
        self.done = 0

    def close(self) -> None:
        if self._reporter is not None:
            self._reporter.finish()
            self._reporter = None

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if self._reporter is not None:
            self._reporter.update(done, total)

    def advance(self, count: int = 1) -> None:
        self.update(self.done + count)


def start_tracking(stage: str, total: int | None, unit: str) -> Tracker:
    """A tracker for one long step; `close()` it when done (or use `track`)."""
    reporter = _REPORTER.get()
    if reporter is not None:
        reporter.start(stage, total, unit)
    return Tracker(reporter)


@contextmanager
def track(stage: str, total: int | None, unit: str) -> Iterator[Tracker]:
    tracker = start_tracking(stage, total, unit)
    try:
        yield tracker
    finally:
        tracker.close()


@contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    token = _REPORTER.set(reporter)
    try:
        yield
    finally:
        _REPORTER.reset(token)


class TerminalProgress:
    """One rich progress bar per long stage: description, bar, done/total, elapsed, time left."""

    def __init__(self, console, labels: dict[str, str] | None = None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self._labels = labels or {}
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), TextColumn("剩余"),
                                  TimeRemainingColumn(), console=console, transient=True)
        self._task = None

    def start(self, stage: str, total: int | None, unit: str) -> None:
        if self._task is None:
            self._progress.start()
        else:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(self._labels.get(stage, stage), total=total, unit=unit)

    def update(self, done: int, total: int | None = None) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=done, **({"total": total} if total else {}))

    def finish(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
            self._progress.stop()


class LogProgress:
    """The same counts as log lines (Dagster's run log), at most one per `every` seconds per stage."""

    def __init__(self, log: Callable[[str], None], every: float = 5.0):
        self._log, self._every = log, every
        self._stage, self._unit, self._total, self._started, self._last = "", "", None, 0.0, 0.0
        self._done = 0

    def start(self, stage: str, total: int | None, unit: str) -> None:
        self._stage, self._unit, self._total, self._done = stage, unit, total, 0
        self._started = self._last = time.monotonic()
        self._log(f"{stage}: 0/{total if total is not None else '?'} {unit}")

    def update(self, done: int, total: int | None = None) -> None:
        self._total, self._done = total or self._total, done
        now = time.monotonic()
        if now - self._last < self._every:
            return
        self._last = now
        elapsed = now - self._started
        left = ""
        if self._total and done:
            left = f", about {elapsed / done * (self._total - done):.0f}s left"
        self._log(f"{self._stage}: {done}/{self._total if self._total is not None else '?'} {self._unit}"
                  f" ({elapsed:.0f}s{left})")

    def finish(self) -> None:
        self._log(f"{self._stage}: {self._done}/{self._total if self._total is not None else '?'} {self._unit}, "
                  f"done in {time.monotonic() - self._started:.1f}s")
