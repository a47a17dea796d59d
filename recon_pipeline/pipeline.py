"""`recon run`: the stages of `recon_pipeline.stages` in order, one after another, with timings.

The Dagster job `nightly_reconciliation` runs the same stage functions as assets
(`recon_pipeline.orchestration`); this is the cron / command-line door.

A run does only what its inputs require (`stages.plan`, `run_state`): with the same visible
drops, code, settings and as-of as the last published run every stage after ingestion is
skipped; dbt's data tests run only when the data, code or settings changed (not when only the
as-of moved); matching re-evaluates only the affected bank lines. `full_refresh` forgets it all.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from recon_pipeline import stages
from recon_pipeline.alerts.notify import DispatchSummary
from recon_pipeline.close.stage import CloseStageReport
from recon_pipeline.faults import crash_point
from recon_pipeline.ingest.loader import IngestReport
from recon_pipeline.publish.publication import PublishStats
from recon_pipeline.settings import Settings
from recon_pipeline.stages import PipelineError, RunContext, RunOptions
from recon_pipeline.warehouse import hold_warehouse

__all__ = ["PipelineError", "RunContext", "RunOptions", "RunResult", "run_pipeline", "run_stages"]


@dataclass
class RunResult:
    as_of: datetime
    warehouse: Path
    ingest: IngestReport | None = None
    link_counts: dict[str, int] = field(default_factory=dict)
    alert_counts: dict[str, int] = field(default_factory=dict)
    health: list[dict] = field(default_factory=list)
    dispatch: DispatchSummary | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    publication: PublishStats | None = None
    close: CloseStageReport | None = None
    matching: stages.LinkSummary | None = None
    skipped: list[str] = field(default_factory=list)  # stages whose inputs had not changed
    tests_run: list[str] = field(default_factory=list)  # dbt stages that ran their data tests


Progress = Callable[[str], None]


def run_stages(
    run: RunContext,
    progress: Progress = lambda stage: None,
    wait_seconds: float = 600,
    on_wait: Callable[[str], None] = lambda holder: None,
) -> RunResult:
    """Run every stage in order, holding the warehouse's writer lock for the whole run.

    Waits up to `wait_seconds` for another run (Dagster or `recon run`) to release it, else
    raises `WarehouseBusyError` naming the holder. Stops at the first stage that raises
    `PipelineError`.
    """
    with hold_warehouse(run.warehouse, wait_seconds, on_wait=on_wait):
        return _run_stages(run, progress)


def _run_stages(run: RunContext, progress: Progress) -> RunResult:
    result = RunResult(as_of=run.as_of, warehouse=run.warehouse)

    @contextmanager
    def stage(name: str):
        progress(name)
        started = time.perf_counter()
        yield
        result.stage_seconds[name] = round(time.perf_counter() - started, 2)
        crash_point(f"{name}:done")  # between two stages

    with stage("ingest"):
        result.ingest = stages.ingest(run)
        plan = stages.plan(run)
    if plan.no_change:
        # The warehouse and the publication already hold this run's result.
        result.skipped = list(stages.SKIPPED_WHEN_NO_CHANGE)
        result.link_counts, result.alert_counts, result.health = stages.read_outcome(run)
    else:
        with stage("dbt_staging"):
            if stages.dbt_staging(run, plan).tested:
                result.tests_run.append("dbt_staging")
        with stage("matching"):
            result.matching = stages.match(run)
            result.link_counts = result.matching.by_status
        with stage("dbt_marts"):
            if stages.dbt_marts(run, plan, result.matching.changed).tested:
                result.tests_run.append("dbt_marts")
        with stage("close"):
            result.close = stages.close(run)
        with stage("alerts"):
            result.health = stages.health(run)
            result.alert_counts = stages.alerts(run)
        with stage("publish"):
            result.publication = stages.publish(run)
    if run.options.notify or run.options.dry_run:
        with stage("notify"):
            result.dispatch = stages.notify(run)
    return result


def run_pipeline(
    landing_dir: Path,
    warehouse: Path,
    as_of: datetime,
    settings: Settings,
    progress: Progress = lambda stage: None,
    send_notifications: bool = False,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
    full_refresh: bool = False,
) -> RunResult:
    """`recon run` with plain arguments (kept for callers and tests); see `run_stages`."""
    run = RunContext(
        landing_dir=Path(landing_dir), warehouse=Path(warehouse), as_of=as_of, settings=settings,
        options=RunOptions(notify=send_notifications, dry_run=dry_run, full_refresh=full_refresh), echo=echo,
    )
    return run_stages(run, progress)
