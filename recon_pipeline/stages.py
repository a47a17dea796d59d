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
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Collection, Iterable, Iterator, Sequence

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
from recon_pipeline.matching.seam import link_metrics, refresh_receipt_links
from recon_pipeline.publish.publication import PublishError, PublishStats, default_published_path, publish_mart
from recon_pipeline.recovery import corruption_message, mentions_corruption
from recon_pipeline.run_state import (
    VISIBLE_DROPS_SQL, RunInputs, code_fingerprint, drops_fingerprint, forget_fingerprints, record_fingerprint,
    stored_fingerprints,
)
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
    full_refresh: bool = False  # recompute everything: forget what earlier runs computed (run_state)
    # Which engine computes the stages: `duckdb` (one process, the warehouse file) or `spark`
    # (PySpark + dbt-spark, tables as Parquet under the `spark` settings); with either, the
    # marts end up in the warehouse file and its publication.
    engine: str = "duckdb"
    # More options go here, with a default that keeps today's behaviour.


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
    drops = None
    if days is not None:
        wanted = sorted(sources) if sources is not None else None
        drops = [(source, day) for day in days for source in (wanted or _all_sources())]
    if is_spark(run):
        report = _ingest_on_spark(run, sources, drops)
    else:
        with connect(run.warehouse) as conn:
            if drops is None:
                report = sync_landing(conn, run.landing_dir, as_of_date(run.as_of), run.settings, sources=sources)
            else:
                report = IngestReport()
                report.loaded, report.failed = load_drops(conn, run.landing_dir, drops, run.settings)
    if drops is None and not report.loaded and not report.unchanged and not report.failed:
        report.warnings.append(f"落地目录中没有日期在 as-of {as_of_text(run.as_of)} 当天或之前的批次，报表为空")
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


def _ingest_on_spark(run: RunContext, sources: Collection[str] | None, drops: list | None) -> IngestReport:
    from recon_pipeline.ingest.spark_tables import load_drops_to_spark, sync_landing_to_spark

    session, options = spark(run)
    scratch = options.dir / "ingest-scratch"
    with spark_job(run, "ingest"):
        if drops is None:
            return sync_landing_to_spark(session, run.landing_dir, as_of_date(run.as_of), run.settings, scratch,
                                         sources=sources)
        report = IngestReport()
        report.loaded, report.failed = load_drops_to_spark(session, run.landing_dir, drops, run.settings, scratch)
        return report


# ---------------------------------------------------------------------------- what changed


@dataclass(frozen=True)
class RunPlan:
    """What this run's inputs require, from their fingerprints (`run_state`) after ingestion.

    `no_change`: same visible drops, code, settings and as-of as the last published run, and the
    publication is there: nothing after ingestion needs to run. `data_key` leaves the as-of out:
    dbt's data tests run again only when it differs from the one they last passed on.
    """

    run_key: str
    data_key: str
    done: dict[str, str]
    no_change: bool

    def tests_needed(self, stage: str) -> bool:
        return self.done.get(f"{stage}_tests") != self.data_key


# What a no-change run skips: every stage after ingestion (notifications still go out).
SKIPPED_WHEN_NO_CHANGE = ("dbt_staging", "matching", "dbt_marts", "close", "alerts", "publish")


def plan(run: RunContext) -> RunPlan:
    with connect(run.warehouse) as conn:
        if run.options.full_refresh:
            forget_fingerprints(conn)
        inputs = run_inputs(run, conn)
        done = stored_fingerprints(conn)
    run_key = inputs.key()
    no_change = done.get("run") == run_key and default_published_path(run.warehouse).exists()
    return RunPlan(run_key, inputs.key(with_as_of=False), done, no_change)


def run_inputs(run: RunContext, conn) -> RunInputs:
    """The run's input fingerprints; on Spark the visible drops are those of Spark's ingest log."""
    data = drops_fingerprint(visible_drops(run, conn)) if is_spark(run) else None
    return RunInputs.measure(conn, run.as_of, run.settings, run.options.engine, data)


def visible_drops(run: RunContext, conn) -> list[tuple[str, str, str]]:
    """(source, drop date, file fingerprint) of every drop the run's as-of sees, from the engine's ingest log."""
    if not is_spark(run):
        return conn.execute(VISIBLE_DROPS_SQL, [as_of_date(run.as_of)]).fetchall()
    session, _ = spark(run)
    with spark_job(run, "ingest"):
        return [tuple(row) for row in session.sql(VISIBLE_DROPS_SQL, args=[as_of_date(run.as_of)]).collect()]


def source_versions(run: RunContext) -> dict[str, str]:
    """Per source, one fingerprint of its drops the as-of sees (a Dagster raw asset's data version:
    unchanged drops, unchanged version, so the UI does not call what was built from them stale)."""
    by_source: dict[str, list[tuple[str, str, str]]] = {}
    with connect(run.warehouse) as conn:
        for row in visible_drops(run, conn):
            by_source.setdefault(row[0], []).append(row)
    return {source: drops_fingerprint(rows) for source, rows in by_source.items()}


def mark_computing(run: RunContext) -> None:
    """A stage is about to change the warehouse: it no longer holds the last published run's result."""
    with connect(run.warehouse) as conn:
        forget_fingerprints(conn, "run")


def _stored(run: RunContext, stage: str) -> str | None:
    with connect(run.warehouse) as conn:
        return stored_fingerprints(conn).get(stage)


def _passed_tests(run: RunContext, stage: str, data_key: str) -> None:
    with connect(run.warehouse) as conn:
        record_fingerprint(conn, f"{stage}_tests", data_key)


# ---------------------------------------------------------------------------- dbt


def dbt_build(run: RunContext, selector: str, with_tests: bool = True, models: Sequence[str] | None = None) -> DbtResult:
    """Build one half of the dbt project (`DBT_BEFORE_MATCHING` or `DBT_AFTER_MATCHING`); without
    its data tests (`dbt run`) when the caller knows they passed on the same data. `models`: only
    these models of the half (and their tests), for a Dagster run of some of its assets.

    The dbt unit tests (fixed inputs, no data: the business rules of the SQL) run once per code
    version and engine, as dbt advises for production: the same code passes them again whatever
    the data. An analyst's edit to a model changes the code version, so they run on the next
    run. On Spark each costs tens of seconds (it plans the fixture rows and the model's CTEs for
    every case); on DuckDB they are 12 of the demo's 200 dbt nodes, about 1.5 s of a run."""
    mark_computing(run)
    command = ["build"] if with_tests else ["run"]
    unit_tests_key = f"{selector}_unit_tests_{run.options.engine}"
    # (`--full-refresh` forgets the record: they run again.)
    skip_unit_tests = with_tests and _stored(run, unit_tests_key) == code_fingerprint()
    if skip_unit_tests:
        command = [*command, "--exclude-resource-type", "unit_test"]
    selection = ["--selector", selector] if models is None else ["--select", *models]
    outcome = run_dbt([*command, *selection], run.warehouse, run.settings, run.as_of, **dbt_target(run))
    if outcome.ok and with_tests and models is None and not skip_unit_tests:
        with connect(run.warehouse) as conn:
            record_fingerprint(conn, unit_tests_key, code_fingerprint())
    if not outcome.ok:
        damaged = next((failure for failure in outcome.failures if mentions_corruption(failure)), None)
        if damaged:
            raise PipelineError(corruption_message(run.warehouse, damaged.split(": ", 1)[-1]))
        shown = "; ".join(outcome.failures[:3])
        more = f"（另有 {len(outcome.failures) - 3} 项）" if len(outcome.failures) > 3 else ""
        raise PipelineError(f"dbt build 失败: {shown}{more}；日志: {outcome.log_file}")
    return replace(outcome, tested=with_tests)


def dbt_staging(run: RunContext, plan: RunPlan | None = None, models: Sequence[str] | None = None) -> DbtResult:
    """The staging models: current state of each source at the as-of (what matching reads)."""
    with_tests = plan is None or plan.tests_needed("dbt_staging")
    outcome = dbt_build(run, DBT_BEFORE_MATCHING, with_tests, models)
    if plan is not None and with_tests and models is None:
        _passed_tests(run, "dbt_staging", plan.data_key)
    return outcome


def dbt_marts(run: RunContext, plan: RunPlan | None = None, matching_changed: bool = True,
              models: Sequence[str] | None = None) -> DbtResult:
    """Everything after the matching seam: intermediate models and the marts. Their tests read
    the matching output too: they run again whenever matching changed rows (`LinkSummary.changed`).
    On Spark, the tables it built then replace their copies in the warehouse file (what alerts,
    the health board and the publication read)."""
    with_tests = plan is None or plan.tests_needed("dbt_marts") or matching_changed
    outcome = dbt_build(run, DBT_AFTER_MATCHING, with_tests, models)
    if is_spark(run):
        copy_spark_tables(run)
    if plan is not None and with_tests and models is None:
        _passed_tests(run, "dbt_marts", plan.data_key)
    return outcome


def dbt_target(run: RunContext) -> dict:
    """`run_dbt`'s target arguments: the default (DuckDB), or dbt-spark on the run's session."""
    if not is_spark(run):
        return {}
    from recon_pipeline.spark_session import dbt_profile_env

    _, options = spark(run)  # dbt-spark (method session) joins the session started here
    return {"target": "spark", "profile_env": dbt_profile_env(options)}


# ---------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class LinkSummary:
    rows: int
    by_status: dict[str, int]
    by_method: dict[str, int]
    auto_link_rate: float  # share of credits linked (auto or confirmed)
    full: bool = True  # every line evaluated (else only the lines a change affects)
    evaluated_lines: int = 0

    @property
    def changed(self) -> bool:
        """Whether matching may have changed `matching.receipt_links` (the marts' tests read it)."""
        return self.full or self.evaluated_lines > 0


def match(run: RunContext) -> LinkSummary:
    """Payer matching and allocation: staging -> matching.receipt_links (on DuckDB incremental
    unless there is no usable previous state or the run is a full refresh)."""
    mark_computing(run)
    if is_spark(run):
        from recon_pipeline.matching.spark_matching import receipt_link_counts, refresh_receipt_links_spark

        session, _ = spark(run)
        with spark_job(run, "matching"):
            refresh_receipt_links_spark(session, run.as_of, run.settings)
            rows, by_status, by_method, credits, linked = receipt_link_counts(session)
        summary = LinkSummary(rows, by_status, by_method, round(linked / credits, 4) if credits else 0.0)
    else:
        with connect(run.warehouse) as conn:
            outcome = refresh_receipt_links(conn, run.as_of, run.settings, full_refresh=run.options.full_refresh)
            metrics = link_metrics(conn)
        summary = LinkSummary(metrics["rows"], metrics["by_status"], metrics["by_method"], metrics["auto_link_rate"],
                              outcome.full, outcome.evaluated_lines)
    if summary.changed:
        # The marts' tests read these links: until they pass on them, no later run may skip them
        # (this run's marts step could fail, and the next run's matching would change nothing).
        with connect(run.warehouse) as conn:
            forget_fingerprints(conn, "dbt_marts_tests")
    return summary


# ---------------------------------------------------------------------------- month-end close


def close(run: RunContext) -> CloseStageReport:
    """After the marts: the automatic close (when `close.auto_close` is on) and the adjustments
    booked against closed periods (mart.period_adjustments, mart.period_close_reconciliation)."""
    mark_computing(run)
    with connect(run.warehouse) as conn:
        try:
            return refresh_close(conn, run.as_of, run.settings)
        except CloseError as exc:
            raise PipelineError(str(exc)) from None


# ---------------------------------------------------------------------------- alerts and health


def health(run: RunContext) -> list[dict]:
    """The health board at the as-of (mart.health_metrics, mart.customer_collection_health)."""
    mark_computing(run)
    with connect(run.warehouse) as conn:
        metrics = health_board.refresh_health(conn, run.as_of, run.settings)
    return metrics[["metric", "value", "threshold", "status"]].to_dict("records")


def alerts(run: RunContext) -> dict[str, int]:
    """The alert rules at the as-of (mart.alerts, mart.alert_history), then the workflow's time
    limits against the people's actions (mart.diff_history, mart.alert_sla: what escalates);
    open alerts by type."""
    mark_computing(run)
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
    # What this publication was computed from: a later run with the same inputs skips the work.
    with connect(run.warehouse) as conn:
        record_fingerprint(conn, "run", run_inputs(run, conn).key())
    return stats


def read_outcome(run: RunContext) -> tuple[dict[str, int], dict[str, int], list[dict]]:
    """What a no-change run reports: link counts, open alerts and the health board as stored."""
    with connect(run.warehouse) as conn:
        links = link_metrics(conn)["by_status"]
        open_alerts = alert_rules.open_alert_counts(conn)
        rows = conn.execute("SELECT metric, value, threshold, status FROM mart.health_metrics WHERE as_of = ?",
                            [run.as_of.replace(tzinfo=None)]).fetchall()
    return links, open_alerts, [dict(zip(("metric", "value", "threshold", "status"), row)) for row in rows]


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


# ---------------------------------------------------------------------------- the Spark engine


def is_spark(run: RunContext) -> bool:
    return run.options.engine == "spark"


def spark(run: RunContext):
    """(the run's SparkSession, its options): started once per process from the `spark` settings."""
    from recon_pipeline.spark_session import SparkEngineError, SparkOptions, spark_session

    try:
        options = SparkOptions.from_settings(run.settings, run.warehouse)
        return spark_session(options), options
    except SparkEngineError as exc:
        raise PipelineError(str(exc)) from None


@contextmanager
def spark_job(run: RunContext, stage: str) -> Iterator[None]:
    """A Spark job that fails becomes one line; the run stops before the warehouse file (and so
    its publication) is touched."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - Spark's errors are Java traces: the user gets one line
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        if not isinstance(exc, (PySparkException, Py4JError)):
            raise
        from recon_pipeline.spark_session import SparkOptions

        log_dir = SparkOptions.from_settings(run.settings, run.warehouse).log_dir
        reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise PipelineError(
            f"Spark 作业失败（{stage}）：{reason[:300]}；数据仓库与发布保持上一次成功运行的结果；日志: {log_dir}"
        ) from None


def copy_spark_tables(run: RunContext) -> dict[str, int]:
    """The Spark run's tables (every dbt model and the matching seam) into the warehouse file."""
    from recon_pipeline.publish.from_spark import built_tables, copy_into_duckdb
    from recon_pipeline.transform.dbt_runner import parsed_manifest

    session, _ = spark(run)
    target = dbt_target(run)
    with spark_job(run, "copy"):
        tables = built_tables(parsed_manifest(run.warehouse, **target))
        return copy_into_duckdb(session, tables, run.warehouse, run.settings.timezone)
