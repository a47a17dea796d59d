"""Dagster resources and the run's as-of: where the landing zone, the warehouse and the settings are.

`run_context` turns an asset's execution context into the `RunContext` the stage functions take,
so an asset is a thin wrapper: `stages.<stage>(run_context(context, recon))`.
"""


import os
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import PrivateAttr

from recon_pipeline.as_of import as_of_text, parse_as_of
from recon_pipeline.settings import PROJECT_ROOT, Settings, load_settings
from recon_pipeline.stages import PipelineError, RunContext, RunOptions
from recon_pipeline.warehouse import WarehouseBusyError, hold_warehouse

AS_OF_TAG = "recon/as_of"
# Set on a run whose inputs equal the last publication's: its steps after ingestion were skipped.
NO_CHANGE_TAG = "recon/no_change"

# Without RECON_LANDING_DIR / RECON_WAREHOUSE: the demo's paths in a checkout (`make demo`, `make
# ui`), else (an installed package) the same names under the working directory.
_BASE = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").is_file() else Path.cwd()
DEFAULT_LANDING_DIR = str(_BASE / "demo" / "landing")
DEFAULT_WAREHOUSE = str(_BASE / "warehouse" / "recon.duckdb")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class EngineResource(dg.ConfigurableResource):
    """Which engine computes the stages: `duckdb` or `spark` (`recon run --engine`, env
    `RECON_ENGINE`; empty: the settings' `engine`). The assets are the same on both. A Spark run
    starts its SparkSession at its first Spark step and stops it when the run ends; a session the
    process had before the run (its owner started it: a test, a notebook) is left to its owner."""

    name: str = os.environ.get("RECON_ENGINE", "")
    _session_before_run: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from recon_pipeline.spark_session import session_running

        self._session_before_run = session_running()

    def choice(self, settings: Settings) -> str:
        from recon_pipeline.spark_session import SparkEngineError, engine_choice

        try:
            return engine_choice(self.name or None, settings)
        except SparkEngineError as exc:
            raise PipelineError(str(exc)) from None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        from recon_pipeline.spark_session import stop_spark_session

        if not self._session_before_run:
            stop_spark_session()


class ReconResource(dg.ConfigurableResource):
    """Paths, settings and run options shared by every asset (same env vars as the `recon` command).

    `notify` stands for `recon run --notify` (env `RECON_NOTIFY=1`), `dry_run` for `--dry-run`,
    `full_refresh` for `--full-refresh` (env `RECON_FULL_REFRESH=1`, or the launchpad's resource
    config: recompute everything), `engine` for `--engine`.
    """

    landing_dir: str = os.environ.get("RECON_LANDING_DIR", DEFAULT_LANDING_DIR)
    warehouse: str = os.environ.get("RECON_WAREHOUSE", DEFAULT_WAREHOUSE)
    settings_file: Optional[str] = os.environ.get("RECON_SETTINGS")
    notify: bool = _env_flag("RECON_NOTIFY")
    dry_run: bool = _env_flag("RECON_NOTIFY_DRY_RUN")
    full_refresh: bool = _env_flag("RECON_FULL_REFRESH")
    # How long a run waits for the warehouse when `recon run` or another Dagster run writes it.
    lock_wait_seconds: float = float(os.environ.get("RECON_LOCK_WAIT", "600"))
    # The engine as a resource of its own (definitions.py gives it): it owns the Spark session's
    # lifetime. Without one, RECON_ENGINE or the settings' `engine` decide.
    engine: Optional[EngineResource] = None

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["ReconResource"]:
        """A run holds the warehouse's writer lock from its first step to its last (in-process
        executor: resources are set up once per run), like `recon run`; sensors never do."""
        run = context.dagster_run
        finished = run is not None and context.instance is not None and (
            (context.instance.get_run_by_id(run.run_id) or run).is_finished
        )
        if run is None or finished:  # a sensor, or Dagster's clean-up after the run ended
            yield self
            return
        holder = f"Dagster 运行 {run.run_id[:8]}（作业 {run.job_name}）"
        try:
            with hold_warehouse(self.warehouse_path, self.lock_wait_seconds, command=holder,
                                on_wait=lambda who: context.log.warning(f"数据仓库正被占用: {who}；等待中…")):
                yield self
        except WarehouseBusyError as exc:
            raise dg.Failure(description=str(exc)) from None

    def settings(self) -> Settings:
        return load_settings(self.settings_file)

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse).resolve()

    @property
    def landing_path(self) -> Path:
        return Path(self.landing_dir).resolve()

    def options(self, settings: Settings | None = None) -> RunOptions:
        engine = (self.engine or EngineResource()).choice(settings or self.settings())
        return RunOptions(notify=self.notify, dry_run=self.dry_run, full_refresh=self.full_refresh, engine=engine)


def run_as_of(context: dg.AssetExecutionContext | dg.OpExecutionContext, settings: Settings) -> datetime:
    """The run's as-of: its `recon/as_of` tag (schedules set their tick time), else its launch time.

    A run launched without the tag gets it added with the launch time, so every step of the
    run, a re-execution and the run page all show the same as-of.
    """
    tag = context.run.tags.get(AS_OF_TAG)
    if tag:
        return parse_as_of(tag, settings.timezone)
    record = context.instance.get_run_record_by_id(context.run.run_id)
    tag = record.dagster_run.tags.get(AS_OF_TAG) if record else None
    if tag:  # an earlier step of this run added it
        return parse_as_of(tag, settings.timezone)
    created = record.create_timestamp if record else datetime.now(tz=ZoneInfo("UTC"))
    moment = created.astimezone(ZoneInfo(settings.timezone)).replace(tzinfo=None, microsecond=0)
    context.instance.add_run_tags(context.run.run_id, {AS_OF_TAG: moment.isoformat()})
    context.log.info(f"运行未带 {AS_OF_TAG} 标签，使用启动时间作为 as-of: {as_of_text(moment)}")
    return moment


def run_context(context: dg.AssetExecutionContext | dg.OpExecutionContext, recon: ReconResource) -> RunContext:
    """The stage functions' view of this Dagster run."""
    settings = recon.settings()
    return RunContext(
        landing_dir=recon.landing_path,
        warehouse=recon.warehouse_path,
        as_of=run_as_of(context, settings),
        settings=settings,
        options=recon.options(settings),
        echo=context.log.info,
        warn=context.log.warning,
        door=f"dagster run {context.run.run_id}",
    )


def as_of_metadata(run: RunContext) -> dict[str, dg.MetadataValue]:
    """Shown on every materialization: the as-of this run evaluated."""
    return {"as_of": dg.MetadataValue.text(as_of_text(run.as_of))}
