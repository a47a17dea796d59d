"""Dagster resources: where the landing zone, the warehouse and the settings file are."""


import os
from datetime import datetime
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

import dagster as dg

from recon_pipeline.as_of import parse_as_of
from recon_pipeline.settings import PROJECT_ROOT, Settings, load_settings

AS_OF_TAG = "recon/as_of"

DEFAULT_LANDING_DIR = str(PROJECT_ROOT / "demo" / "landing")
DEFAULT_WAREHOUSE = str(PROJECT_ROOT / "warehouse" / "recon.duckdb")


class ReconResource(dg.ConfigurableResource):
    """Paths and settings shared by every asset (same env vars as the `recon` command)."""

    landing_dir: str = os.environ.get("RECON_LANDING_DIR", DEFAULT_LANDING_DIR)
    warehouse: str = os.environ.get("RECON_WAREHOUSE", DEFAULT_WAREHOUSE)
    settings_file: Optional[str] = os.environ.get("RECON_SETTINGS")

    def settings(self) -> Settings:
        return load_settings(self.settings_file)

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse).resolve()

    @property
    def landing_path(self) -> Path:
        return Path(self.landing_dir).resolve()


def run_as_of(context: dg.AssetExecutionContext, settings: Settings) -> datetime:
    """The run's as-of: its `recon/as_of` tag (schedules set it), else the run's creation time."""
    tag = context.run.tags.get(AS_OF_TAG)
    if tag:
        return parse_as_of(tag, settings.timezone)
    record = context.instance.get_run_record_by_id(context.run_id)
    created = record.create_timestamp if record else datetime.now(tz=ZoneInfo("UTC"))
    return created.astimezone(ZoneInfo(settings.timezone)).replace(tzinfo=None, microsecond=0)
