"""Run the dbt project against a warehouse, in this process (both doors: `recon run` and the Dagster dbt assets).

dbt is invoked through `dbtRunner` rather than as a subprocess: no interpreter start-up and no
re-parse per command. The project is parsed once per process and warehouse into a manifest
that every later command reuses; the parse itself is partial (dbt's `partial_parse.msgpack`
under the warehouse's dbt folder), so a new process re-reads only the files that changed.
The parse sees no run vars on purpose: dbt throws its partial-parse state away whenever the
vars change, and the as-of changes on every run. Vars are rendered when the nodes compile.

Both paths build their arguments here, so the vars the models see are the same.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from recon_pipeline.as_of import as_of_text
from recon_pipeline.faults import crash_point, crash_targets
from recon_pipeline.progress import Tracker, start_tracking
from recon_pipeline.recovery import mentions_corruption
from recon_pipeline.settings import DBT_PROJECT_DIR, Settings


@dataclass
class DbtResult:
    ok: bool
    counts: dict[str, int]  # status -> number of nodes
    failures: list[str]  # "model.recon.x: message"
    log_file: Path
    nodes: list[tuple[str, str]] = field(default_factory=list)  # (unique_id, status) of every node run
    seconds: dict[str, float] = field(default_factory=dict)  # unique_id -> execution time
    tested: bool = True  # the data tests ran (`dbt build`), not only the models (`dbt run`)


def dbt_vars(settings: Settings, as_of: datetime) -> dict:
    return {"as_of": as_of_text(as_of), **settings.dbt_vars()}


def dbt_work_dir(warehouse: Path, target: str | None = None) -> Path:
    """dbt's target/ and logs/ per warehouse (and profile target: the Spark engine's manifest
    holds dbt-spark's macros), so two runs never share a manifest."""
    name = Path(warehouse).stem + (f".{target}" if target else "")
    return Path(warehouse).resolve().parent / ".recon-dbt" / name


def dbt_env(warehouse: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["RECON_WAREHOUSE"] = str(Path(warehouse).resolve())
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def dbt_executable() -> str:
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else (shutil.which("dbt") or "dbt")


# dbt keeps global state (flags, adapters, its DuckDB handle): one command at a time per process.
_LOCK = threading.RLock()
# Parsed manifests by warehouse file name: dbt-duckdb names the database after the file's stem,
# which the manifest's nodes carry; nothing else in it depends on the warehouse.
_MANIFESTS: dict[str, object] = {}


# The pipeline's profile target: the production warehouse (RECON_WAREHOUSE); `dev` is the analysts'.
# The Spark engine's production target is `spark` (dbt-spark on the run's session).
PIPELINE_TARGET = "prod"
# Set for the pipeline's dbt commands: the prod target refuses to run without it (guard_production_target).
PIPELINE_ENV = {"RECON_PIPELINE_RUN": "1"}


def _common_args(work: Path, target: str | None) -> list[str]:
    return [
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target", target or PIPELINE_TARGET,
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
    ]


def _global_args() -> list[str]:
    # Nothing on the user's terminal (the pipeline prints its own stages); dbt.log keeps it all.
    return ["--log-level", "none", "--log-level-file", "info", "--no-use-colors-file",
            "--no-send-anonymous-usage-stats", "--no-version-check"]


def _release_warehouse() -> None:
    """Close dbt-duckdb's handle on the warehouse file, so another process can open it for writing."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None and getattr(env, "conn", None) is not None:
            env.conn.close()
            env.conn = None


def _environment(warehouse: Path, profile_env: dict[str, str] | None = None):
    """profiles.yml reads the warehouse path (and the Spark connection) from the environment:
    set it for this command only."""
    profile_env = profile_env or {}
    previous = {k: os.environ.get(k)
                for k in ("RECON_WAREHOUSE", "DBT_SEND_ANONYMOUS_USAGE_STATS", *PIPELINE_ENV, *profile_env)}
    os.environ["RECON_WAREHOUSE"] = str(Path(warehouse).resolve())
    os.environ.update(PIPELINE_ENV)
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.update(profile_env)

    def restore() -> None:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return restore


def parsed_manifest(warehouse: Path, refresh: bool = False, target: str | None = None,
                    profile_env: dict[str, str] | None = None):
    """The project's manifest for this warehouse and target, parsed once per process (partially
    when dbt can). Each adapter's manifest holds its own macros: never the DuckDB one for Spark."""
    from dbt.cli.main import dbtRunner

    work = dbt_work_dir(warehouse, target)
    key = work.name
    with _LOCK:
        if not refresh and key in _MANIFESTS:
            return _MANIFESTS[key]
        work.mkdir(parents=True, exist_ok=True)
        restore = _environment(warehouse, profile_env)
        try:
            outcome = dbtRunner().invoke([*_global_args(), "parse", *_common_args(work, target), "--partial-parse"])
        finally:
            restore()
            _release_warehouse()
        if not outcome.success or outcome.result is None:
            raise RuntimeError(f"dbt parse 失败: {outcome.exception or '见 ' + str(work / 'logs' / 'dbt.log')}")
        _MANIFESTS[key] = outcome.result
        return outcome.result


def _node_counter(tracker: Tracker):
    """A dbt event callback: nodes finished out of the nodes selected (models and tests)."""
    state = {"done": 0, "total": None}

    def on_event(event) -> None:
        name = event.info.name
        if name == "LogStartLine" and state["total"] is None:
            state["total"] = int(event.data.total) or None
        elif name == "NodeFinished":
            state["done"] += 1
            tracker.update(state["done"], state["total"])
    return on_event


def _results_summary(results) -> tuple[dict[str, int], list[str], list[tuple[str, str]], dict[str, float]]:
    counts: dict[str, int] = {}
    failures: list[str] = []
    nodes: list[tuple[str, str]] = []
    seconds: dict[str, float] = {}
    for node_result in getattr(results, "results", None) or []:
        status = str(getattr(node_result.status, "value", node_result.status))
        counts[status] = counts.get(status, 0) + 1
        nodes.append((node_result.node.unique_id, status))
        seconds[node_result.node.unique_id] = round(float(getattr(node_result, "execution_time", 0) or 0), 3)
        if status in ("error", "fail", "runtime error"):
            message = (node_result.message or "").strip().splitlines()
            # A damaged warehouse shows on a later line of dbt's message: keep that one.
            shown = next((line.strip() for line in message if mentions_corruption(line)), message[0] if message else status)
            failures.append(f"{node_result.node.unique_id}: {shown}")
    return counts, failures, nodes, seconds


def _crash_hooks(command: list[str]) -> list:
    """For the fault-injection tests: a crash point `dbt:<selector>` after each node dbt finishes."""
    if not crash_targets("dbt:"):
        return []
    selector = command[command.index("--selector") + 1] if "--selector" in command else command[0]
    point = f"dbt:{selector}"
    return [lambda event: crash_point(point) if event.info.name == "NodeFinished" else None]


def run_dbt(
    command: list[str],
    warehouse: Path,
    settings: Settings,
    as_of: datetime,
    target: str | None = None,
    profile_env: dict[str, str] | None = None,
) -> DbtResult:
    """One dbt command (e.g. `["build", "--selector", "before_matching"]`) in this process;
    `target`: the profile's output (default: `prod`, DuckDB; `spark` for the Spark engine, whose
    connection settings come in `profile_env`)."""
    from dbt.cli.main import dbtRunner

    work = dbt_work_dir(warehouse, target)
    log_file = work / "logs" / "dbt.log"
    with _LOCK:
        manifest = parsed_manifest(warehouse, target=target, profile_env=profile_env)
        restore = _environment(warehouse, profile_env)
        try:
            args = [*_global_args(), *command, *_common_args(work, target), "--no-write-json",
                    "--vars", json.dumps(dbt_vars(settings, as_of))]
            tracker = start_tracking(f"dbt {command[0]}", None, "个节点")
            outcome = dbtRunner(manifest=manifest, callbacks=[_node_counter(tracker), *_crash_hooks(command)]).invoke(args)
        finally:
            tracker.close()
            restore()
            _release_warehouse()
    counts, failures, nodes, seconds = _results_summary(outcome.result)
    if not outcome.success and not failures:
        failures.append(str(outcome.exception or f"dbt {command[0]} 未成功，见 {log_file}").splitlines()[0])
    return DbtResult(bool(outcome.success), counts, failures, log_file, nodes, seconds)
