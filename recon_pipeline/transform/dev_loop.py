"""The analysts' door: dbt by hand against a development copy of the warehouse, with the vars of
the last production run (`recon dbt <command>`).

Running dbt on the production file by hand rebuilds the marts at another as-of (the project
default is 2099) while matching and alerts stay at the last run's, and publishes nothing. So:
- `<warehouse stem>.dev.duckdb` beside the warehouse is a copy taken under the writer lock
  (waiting for a running pipeline), refreshed whenever production has run since (or `--refresh`);
- dbt runs with the profile's `dev` target on that copy, the as-of and rule vars of the last
  production run (its run record), and target/logs under the warehouse's dbt folder;
- the `prod` target refuses anyone but the pipeline (macro guard_production_target).
The copy already holds matching.receipt_links, so a plain `build` runs the whole project.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from recon_pipeline.settings import DBT_PROJECT_DIR
from recon_pipeline.stages import read_run_record, run_record_path
from recon_pipeline.transform.dbt_runner import PIPELINE_ENV, dbt_executable, dbt_work_dir
from recon_pipeline.warehouse import hold_warehouse


class DevLoopError(RuntimeError):
    """One line for the analyst."""


def dev_warehouse_path(warehouse: Path) -> Path:
    warehouse = Path(warehouse).resolve()
    return warehouse.with_name(f"{warehouse.stem}.dev.duckdb")


def refresh_dev_copy(warehouse: Path, wait_seconds: float = 600, force: bool = False) -> tuple[Path, bool]:
    """The development copy, copied again when missing, older than the last production run, or forced."""
    warehouse, dev = Path(warehouse).resolve(), dev_warehouse_path(warehouse)
    record = run_record_path(warehouse)
    stale = force or not dev.is_file() or (record.is_file() and dev.stat().st_mtime < record.stat().st_mtime)
    if not stale:
        return dev, False
    with hold_warehouse(warehouse, wait_seconds, command="recon dbt（复制开发副本）"):
        for suffix in ("", ".wal"):  # a .wal is there only after a crash; it belongs to the copy
            source, target = Path(f"{warehouse}{suffix}"), Path(f"{dev}{suffix}")
            if source.is_file():
                building = target.with_name(f"{target.name}.tmp-{os.getpid()}")
                shutil.copyfile(source, building)
                os.replace(building, target)
            else:
                target.unlink(missing_ok=True)
    return dev, True


def dev_dbt_command(args: list[str], warehouse: Path) -> tuple[list[str], dict[str, str]]:
    """The dbt command line and environment for `recon dbt ARGS` (the last run's vars unless given)."""
    record = read_run_record(warehouse)
    if record is None:
        raise DevLoopError(f"仓库 {warehouse} 尚无生产运行记录：请先运行 recon run 或 Dagster 作业 nightly_reconciliation")
    if any(arg in ("--target", "-t") or arg.startswith("--target=") for arg in args):
        raise DevLoopError("recon dbt 只在开发副本（dev 目标）上运行；生产仓库只由流水线写入")
    work = dbt_work_dir(warehouse)
    command = [
        dbt_executable(), *args,
        "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR), "--target", "dev",
        "--target-path", str(work / "dev-target"), "--log-path", str(work / "dev-logs"),
    ]
    if args and args[0] not in ("deps", "clean", "debug", "--help", "-h", "--version") and "--vars" not in args:
        command += ["--vars", json.dumps(record["dbt_vars"])]
    env = {key: value for key, value in os.environ.items() if key not in PIPELINE_ENV}
    env["RECON_DEV_WAREHOUSE"] = str(dev_warehouse_path(warehouse))
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return command, env


def run_dev_dbt(args: list[str], warehouse: Path, refresh: bool = False, wait_seconds: float = 600,
                echo=print) -> int:
    warehouse = Path(warehouse).resolve()
    if not warehouse.is_file():
        raise DevLoopError(f"仓库不存在: {warehouse}")
    command, env = dev_dbt_command(args, warehouse)
    dev, copied = refresh_dev_copy(warehouse, wait_seconds, force=refresh)
    record = read_run_record(warehouse)
    echo(f"开发副本: {dev}{'（已从生产仓库复制）' if copied else ''}；as-of {record['as_of']}（上次生产运行）")
    return subprocess.run(command, env=env, cwd=DBT_PROJECT_DIR).returncode
