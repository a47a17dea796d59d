"""`recon run`: ingest -> dbt staging -> matching -> dbt marts -> alerts -> publication.

Each stage opens the warehouse, does its work and closes it before the next one starts,
because DuckDB takes one writing process at a time (dbt runs as a separate process).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from recon_pipeline.alerts import health, notify
from recon_pipeline.alerts import rules as alerts
from recon_pipeline.as_of import as_of_date
from recon_pipeline.ingest.loader import IngestReport, sync_landing
from recon_pipeline.matching.seam import refresh_receipt_links
from recon_pipeline.publish.publication import PublishError, PublishStats, publish_mart
from recon_pipeline.settings import Settings
from recon_pipeline.transform.dbt_runner import run_dbt
from recon_pipeline.warehouse import connect


class PipelineError(Exception):
    """A run failed; the message is one line for the user."""


@dataclass
class RunResult:
    as_of: datetime
    warehouse: Path
    ingest: IngestReport | None = None
    link_counts: dict[str, int] = field(default_factory=dict)
    alert_counts: dict[str, int] = field(default_factory=dict)
    health: list[dict] = field(default_factory=list)
    dispatch: notify.DispatchSummary | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    publication: PublishStats | None = None


Progress = Callable[[str], None]


@contextmanager
def _stage(result: RunResult, name: str, progress: Progress):
    progress(name)
    started = time.perf_counter()
    yield
    result.stage_seconds[name] = round(time.perf_counter() - started, 2)


def _dbt(command: list[str], warehouse: Path, settings: Settings, as_of: datetime) -> None:
    outcome = run_dbt(command, warehouse, settings, as_of)
    if not outcome.ok:
        shown = "; ".join(outcome.failures[:3])
        more = f"（另有 {len(outcome.failures) - 3} 项）" if len(outcome.failures) > 3 else ""
        raise PipelineError(f"dbt {command[0]} 失败: {shown}{more}；日志: {outcome.log_file}")


def run_pipeline(
    landing_dir: Path,
    warehouse: Path,
    as_of: datetime,
    settings: Settings,
    progress: Progress = lambda stage: None,
    send_notifications: bool = False,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> RunResult:
    landing_dir, warehouse = Path(landing_dir), Path(warehouse)
    if not landing_dir.is_dir():
        raise PipelineError(f"落地目录不存在: {landing_dir}")
    result = RunResult(as_of=as_of, warehouse=warehouse)

    with _stage(result, "ingest", progress), connect(warehouse) as conn:
        result.ingest = sync_landing(conn, landing_dir, as_of_date(as_of), settings)
    if result.ingest.failed:
        first = result.ingest.failed[0]
        more = f"（共 {len(result.ingest.failed)} 个批次失败）" if len(result.ingest.failed) > 1 else ""
        raise PipelineError(f"无法读取落地文件 {first}{more}；其余批次已入库，报表未重建")

    with _stage(result, "dbt_staging", progress):
        _dbt(["build", "--selector", "before_matching"], warehouse, settings, as_of)

    with _stage(result, "matching", progress), connect(warehouse) as conn:
        links = refresh_receipt_links(conn, as_of, settings)
        result.link_counts = links.groupby("match_status").size().to_dict()

    with _stage(result, "dbt_marts", progress):
        _dbt(["build", "--selector", "after_matching"], warehouse, settings, as_of)

    with _stage(result, "alerts", progress), connect(warehouse) as conn:
        metrics = health.refresh_health(conn, as_of, settings)
        alerts.refresh_alerts(conn, as_of, settings)
        result.alert_counts = alerts.open_alert_counts(conn)
        result.health = metrics[["metric", "value", "threshold", "status"]].to_dict("records")

    # Readers (BI tools, the dashboard) only ever open the published copy, never this file.
    with _stage(result, "publish", progress):
        try:
            result.publication = publish_mart(warehouse, as_of=as_of)
        except PublishError as exc:
            raise PipelineError(str(exc)) from None

    if send_notifications or dry_run:
        with _stage(result, "notify", progress), connect(warehouse) as conn:
            try:
                result.dispatch = notify.dispatch_alerts(conn, as_of, settings, dry_run=dry_run, echo=echo)
            except notify.NotificationError as exc:
                raise PipelineError(str(exc)) from None
        if not result.dispatch.ok:
            raise PipelineError(f"部分通知未发送，下次运行将补发: {result.dispatch.to_text()}")

    return result
