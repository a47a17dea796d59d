"""One settings file for the whole pipeline: business rules, thresholds and column mappings.

The packaged defaults (`config/settings.yaml`) are merged with a user's file named by
`RECON_SETTINGS` or passed explicitly; nested mappings merge key by key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

DEFAULT_SETTINGS_FILE = Path(__file__).parent / "config" / "settings.yaml"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The dbt project: shipped inside the package by a plain `pip install` (setup.py copies it), the
# repository's sibling folder in a checkout or an editable install; RECON_DBT_PROJECT_DIR overrides.
PACKAGED_DBT_PROJECT_DIR = Path(__file__).resolve().parent / "dbt_project"
DBT_PROJECT_DIR = Path(
    os.environ.get("RECON_DBT_PROJECT_DIR")
    or (PACKAGED_DBT_PROJECT_DIR if PACKAGED_DBT_PROJECT_DIR.is_dir() else PROJECT_ROOT / "dbt_project")
)


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class Settings:
    timezone: str
    cutoff_hour: int
    amount_tolerance: Decimal
    partitions_start_date: str | None  # None: the earliest drop in the landing zone
    alerts: dict[str, Any]
    matching: dict[str, Any]
    column_mappings: dict[str, dict[str, str]]
    value_mappings: dict[str, dict[str, str]]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def dbt_vars(self) -> dict[str, Any]:
        """The business-rule settings the dbt models read as vars."""
        return {
            "timezone": self.timezone,
            "cutoff_hour": self.cutoff_hour,
            "amount_tolerance": str(self.amount_tolerance),
            "discrepancy_rate_threshold": self.alerts["discrepancy_rate_threshold"],
        }


def load_settings(path: str | os.PathLike | None = None) -> Settings:
    """Load defaults, then the user's file (explicit path, else $RECON_SETTINGS, else none)."""
    data = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text(encoding="utf-8"))
    user_path = path or os.environ.get("RECON_SETTINGS")
    if user_path:
        user_file = Path(user_path)
        if not user_file.is_file():
            raise FileNotFoundError(f"settings file not found: {user_file}")
        data = _merge(data, yaml.safe_load(user_file.read_text(encoding="utf-8")) or {})
    return Settings(
        timezone=data["timezone"],
        cutoff_hour=int(data["cutoff_hour"]),
        amount_tolerance=Decimal(str(data["amount_tolerance"])),
        partitions_start_date=str(data["partitions_start_date"]) if data.get("partitions_start_date") else None,
        alerts=data["alerts"],
        matching=data["matching"],
        column_mappings=data.get("column_mappings") or {},
        value_mappings=data.get("value_mappings") or {},
        raw=data,
    )
