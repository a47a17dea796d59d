"""Run the dbt project against a warehouse (used by `recon run`; Dagster uses dagster-dbt).

Both paths build their arguments here, so the vars the models see are the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from recon_pipeline.as_of import as_of_text
from recon_pipeline.settings import DBT_PROJECT_DIR, Settings


@dataclass
class DbtResult:
    ok: bool
    counts: dict[str, int]  # status -> number of nodes
    failures: list[str]  # "model.recon.x: message"
    log_file: Path


def dbt_vars(settings: Settings, as_of: datetime) -> dict:
    return {"as_of": as_of_text(as_of), **settings.dbt_vars()}


def dbt_work_dir(warehouse: Path) -> Path:
    """dbt's target/ and logs/ per warehouse, so two runs never share a manifest."""
    return Path(warehouse).resolve().parent / ".recon-dbt" / Path(warehouse).stem


def dbt_env(warehouse: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["RECON_WAREHOUSE"] = str(Path(warehouse).resolve())
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def dbt_executable() -> str:
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else (shutil.which("dbt") or "dbt")


def run_dbt(
    command: list[str],
    warehouse: Path,
    settings: Settings,
    as_of: datetime,
) -> DbtResult:
    work = dbt_work_dir(warehouse)
    work.mkdir(parents=True, exist_ok=True)
    target = work / "target"
    log_file = work / "dbt-output.log"
    args = [
        dbt_executable(),
        *command,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(target),
        "--log-path", str(work / "logs"),
        "--vars", json.dumps(dbt_vars(settings, as_of)),
    ]
    with log_file.open("w", encoding="utf-8") as log:
        completed = subprocess.run(args, env=dbt_env(warehouse), stdout=log, stderr=subprocess.STDOUT, cwd=DBT_PROJECT_DIR)
    counts: dict[str, int] = {}
    failures: list[str] = []
    results_file = target / "run_results.json"
    if results_file.exists():
        for result in json.loads(results_file.read_text(encoding="utf-8")).get("results", []):
            status = result.get("status", "unknown")
            counts[status] = counts.get(status, 0) + 1
            if status in ("error", "fail", "runtime error"):
                message = (result.get("message") or "").strip().splitlines()
                failures.append(f"{result.get('unique_id')}: {message[0] if message else status}")
    if completed.returncode != 0 and not failures:
        tail = log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        failures.append(" | ".join(tail) or f"dbt exited {completed.returncode}")
    return DbtResult(completed.returncode == 0, counts, failures, log_file)
