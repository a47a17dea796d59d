"""The pipeline's stages, shared by both front doors: `recon run` (pipeline.py) and the Dagster assets.

One small function per stage, in data-flow order:

    ingest -> dbt staging -> matching -> dbt marts -> close -> health -> alerts -> publish -> notify

Each takes the run's `RunContext` (where, as of when, with which settings and options) and
returns what it did; it opens the warehouse itself and closes it before returning, because
DuckDB takes one writing process at a time and dbt is another process. A stage that cannot do
its work raises `PipelineError` with one line for the user. `recon run` calls them in order
(`pipeline.run_stages`); each Dagster asset calls one of them (`recon_pipeline.orchestration`), so
whatever one door does, the other does.

Adding a stage: write `def my_stage(run: RunContext) -> MyResult` here (logic in its own
subpackage, this function only opens the warehouse and calls it), call it at its place in
`pipeline.run_stages` (store its result on `RunResult`), and add a thin Dagster asset that
calls it with `run_context(context, recon)`, with `deps=` on the assets it reads and listed in
the `deps` of the assets that read it (the publication reads every mart table: add yours to
`orchestration.publish_assets.PUBLISHED_INPUTS`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Collection, Iterable

import pandas as pd

from recon_pipeline.alerts import health as health_board
from recon_pipeline.alerts import notify as notifications
from recon_pipeline.alerts import rules as alert_rules
from recon_pipeline.alerts import workflow
from recon_pipeline.as_of import as_of_date, as_of_text
from recon_pipeline.close.periods import CloseError
from recon_pipeline.close.stage import CloseStageReport, refresh_close
from recon_pipeline.ingest.loader import IngestReport, load_drops, sync_landing

if TYPE_CHECKING:
    from recon_pipeline.extract.stage import ExtractReport
from recon_pipeline.matching.seam import refresh_receipt_links
from recon_pipeline.publish.publication import PublishError, PublishStats, publish_mart
from recon_pipeline.recovery import corruption_message, mentions_corruption
from recon_pipeline.settings import Settings
from recon_pipeline.transform.dbt_runner import DbtResult, dbt_vars, dbt_work_dir, run_dbt
from recon_pipeline.warehouse import connect

# The two halves of the dbt project around the Python matching step (dbt_project/selectors.yml).
DBT_BEFORE_MATCHING = "before_matching"
DBT_AFTER_MATCHING = "after_matching"


class PipelineError(Exception):
    """A run failed; the message is one line for the user."""


@dataclass(frozen=True)
class RunOptions:
    """How to run, beyond where and when. `recon run` flags; in Dagster, ReconResource fields."""

    notify: bool = False  # send new alerts (e-mail / webhooks), each once
    dry_run: bool = False  # print the notifications that would be sent, send nothing
    # More options go here (e.g. `engine`, `full_refresh`), with a default that keeps today's behaviour.


@dataclass(frozen=True)
class RunContext:
    """One run: the landing zone, the warehouse, the as-of every time rule uses, settings, options."""

    landing_dir: Path
    warehouse: Path
    as_of: datetime  # naive local time in settings.timezone
    settings: Settings
    options: RunOptions = field(default_factory=RunOptions)
    # Lines for the person watching (dry-run messages); warnings that do not fail the run.
    echo: Callable[[str], None] = print
    warn: Callable[[str], None] = lambda message: None
    # Who runs it, for the run record (`recon run`, `dagster run <id>`).
    door: str = "recon run"

    def __post_init__(self) -> None:
        # One absolute path for dbt (which runs in its project folder) and Python.
        object.__setattr__(self, "landing_dir", Path(self.landing_dir).resolve())
        object.__setattr__(self, "warehouse", Path(self.warehouse).resolve())

    def with_options(self, **changes) -> "RunContext":
        return replace(self, options=replace(self.options, **changes))


# ---------------------------------------------------------------------------- extract (before a run)


def extract(run: RunContext, entry: str | None = None) -> "ExtractReport":
    """Pull the settings' `extract:` entries (or one) into landing drops dated by the as-of.

    Not one of `run_stages`: it talks to outside systems that fail on their own schedule, so it
    runs before the pipeline (`recon extract`, the Dagster extract schedule) and a bank server
    being down never stops a reconciliation of what did arrive. It never opens the warehouse.
    A failed entry raises PipelineError with its line, after the other entries ran.
    """
    from recon_pipeline.extract.config import ExtractError
    from recon_pipeline.extract.stage import extract_sources

    try:
        report = extract_sources(run.landing_dir, run.as_of, run.settings, only=entry)
    except ExtractError as exc:
        raise PipelineError(str(exc)) from None
    if report.failed:
        more = f"（共 {len(report.failed)} 个提取项失败）" if len(report.failed) > 1 else ""
        raise PipelineError(f"{report.failed[0].error}{more}")
    return report


# ---------------------------------------------------------------------------- ingest


def ingest(
    run: RunContext,
    sources: Collection[str] | None = None,
    days: Iterable[date] | None = None,
) -> IngestReport:
    """Load the landing drops into raw history.

    By default every drop dated on or before the as-of date that is new or changed (late drops
    included); `days` loads exactly those drop dates instead (a Dagster partition or backfill).
    `sources` limits it to some sources. Drops that fail are reported after the others loaded,
    and the run stops before the models are rebuilt on incomplete data.
    """
    if not run.landing_dir.is_dir():
        raise PipelineError(f"落地目录不存在: {run.landing_dir}")
    with connect(run.warehouse) as conn:
        if days is None:
            report = sync_landing(conn, run.landing_dir, as_of_date(run.as_of), run.settings, sources=sources)
            if not report.loaded and not report.unchanged and not report.failed:
                report.warnings.append(
                    f"落地目录中没有日期在 as-of {as_of_text(run.as_of)} 当天或之前的批次，报表为空"
                )
        else:
            report = IngestReport()
            wanted = sorted(sources) if sources is not None else None
            drops = [(source, day) for day in days for source in (wanted or _all_sources())]
            report.loaded, report.failed = load_drops(conn, run.landing_dir, drops, run.settings)
    for warning in report.warnings:
        run.warn(warning)
    if report.failed:
        first = report.failed[0]
        more = f"（共 {len(report.failed)} 个批次失败）" if len(report.failed) > 1 else ""
        raise PipelineError(f"无法读取落地文件 {first}{more}；其余批次已入库，报表未重建")
    return report


def _all_sources() -> list[str]:
    from recon_pipeline.sources import SOURCES

    return sorted(SOURCES)


# ---------------------------------------------------------------------------- dbt


def dbt_build_command(run: RunContext) -> list[str]:
    """`dbt build` and its flags as both doors run it (the vars are added by each runner)."""
    return ["build"]


def dbt_cli_args(run: RunContext) -> list[str]:
    """The full argument list for dagster-dbt (which adds the asset's own selection)."""
    return [*dbt_build_command(run), "--vars", json.dumps(dbt_vars(run.settings, run.as_of))]


def dbt_build(run: RunContext, selector: str) -> DbtResult:
    """Build one half of the dbt project (`DBT_BEFORE_MATCHING` or `DBT_AFTER_MATCHING`)."""
    outcome = run_dbt([*dbt_build_command(run), "--selector", selector], run.warehouse, run.settings, run.as_of)
    if not outcome.ok:
        damaged = next((failure for failure in outcome.failures if mentions_corruption(failure)), None)
        if damaged:
            raise PipelineError(corruption_message(run.warehouse, damaged.split(": ", 1)[-1]))
        shown = "; ".join(outcome.failures[:3])
        more = f"（另有 {len(outcome.failures) - 3} 项）" if len(outcome.failures) > 3 else ""
        raise PipelineError(f"dbt build 失败: {shown}{more}；日志: {outcome.log_file}")
    return outcome


def dbt_staging(run: RunContext) -> DbtResult:
    """The staging models: current state of each source at the as-of (what matching reads)."""
    return dbt_build(run, DBT_BEFORE_MATCHING)


def dbt_marts(run: RunContext) -> DbtResult:
    """Everything after the matching seam: intermediate models and the marts."""
    return dbt_build(run, DBT_AFTER_MATCHING)


# ---------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class LinkSummary:
    rows: int
    by_status: dict[str, int]
    by_method: dict[str, int]
    auto_link_rate: float  # share of credits linked (auto or confirmed)

    @classmethod
    def of(cls, links: pd.DataFrame) -> "LinkSummary":
        credits = links[links["allocated_cents"] > 0].drop_duplicates(["account_no", "txn_id"])
        linked = credits[credits["match_status"].isin(["auto_linked", "confirmed"])]
        return cls(
            rows=len(links),
            by_status={str(k): int(v) for k, v in links.groupby("match_status").size().items()},
            by_method={str(k): int(v) for k, v in links.groupby("match_method").size().items()},
            auto_link_rate=round(len(linked) / len(credits), 4) if len(credits) else 0.0,
        )


def match(run: RunContext) -> LinkSummary:
    """Payer matching and allocation: staging -> matching.receipt_links."""
    with connect(run.warehouse) as conn:
        links = refresh_receipt_links(conn, run.as_of, run.settings)
    return LinkSummary.of(links)


# ---------------------------------------------------------------------------- month-end close


def close(run: RunContext) -> CloseStageReport:
    """After the marts: the automatic close (when `close.auto_close` is on) and the adjustments
    booked against closed periods (mart.period_adjustments, mart.period_close_reconciliation)."""
    with connect(run.warehouse) as conn:
        try:
            return refresh_close(conn, run.as_of, run.settings)
        except CloseError as exc:
            raise PipelineError(str(exc)) from None


# ---------------------------------------------------------------------------- alerts and health


def health(run: RunContext) -> list[dict]:
    """The health board at the as-of (mart.health_metrics, mart.customer_collection_health)."""
    with connect(run.warehouse) as conn:
        metrics = health_board.refresh_health(conn, run.as_of, run.settings)
    return metrics[["metric", "value", "threshold", "status"]].to_dict("records")


def alerts(run: RunContext) -> dict[str, int]:
    """The alert rules at the as-of (mart.alerts, mart.alert_history), then the workflow's time
    limits against the people's actions (mart.diff_history, mart.alert_sla: what escalates);
    open alerts by type."""
    with connect(run.warehouse) as conn:
        alert_rules.refresh_alerts(conn, run.as_of, run.settings)
        workflow.refresh_workflow(conn, run.as_of, run.settings)
        return alert_rules.open_alert_counts(conn)


# ---------------------------------------------------------------------------- publication


def publish(run: RunContext) -> PublishStats:
    """Copy `mart` into `<warehouse stem>.published.duckdb` (atomic swap); record the run.

    Readers (BI tools, the dashboard) only ever open the published copy, never the warehouse.
    """
    try:
        stats = publish_mart(run.warehouse, as_of=run.as_of)
    except PublishError as exc:
        raise PipelineError(str(exc)) from None
    write_run_record(run)
    return stats


def run_record_path(warehouse: Path) -> Path:
    """The last successful production run of a warehouse: its as-of and dbt vars (JSON)."""
    return dbt_work_dir(warehouse) / "last_run.json"


def write_run_record(run: RunContext) -> None:
    record = {
        "as_of": as_of_text(run.as_of),
        "landing_dir": str(run.landing_dir),
        "warehouse": str(run.warehouse),
        "door": run.door,
        "dbt_vars": dbt_vars(run.settings, run.as_of),
    }
    path = run_record_path(run.warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(temporary, path)


def read_run_record(warehouse: Path) -> dict | None:
    path = run_record_path(Path(warehouse))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------- notifications


def notify(run: RunContext) -> notifications.DispatchSummary | None:
    """Send each new open alert once (or print them with dry_run); None when notifications are off."""
    if not (run.options.notify or run.options.dry_run):
        return None
    with connect(run.warehouse) as conn:
        try:
            summary = notifications.dispatch_alerts(
                conn, run.as_of, run.settings, dry_run=run.options.dry_run, echo=run.echo
            )
        except notifications.NotificationError as exc:
            raise PipelineError(str(exc)) from None
    if not summary.ok:
        raise PipelineError(f"部分通知未发送，下次运行将补发: {summary.to_text()}")
    return summary
