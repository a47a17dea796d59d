"""The incremental invariant: after any sequence of drops, an incremental run leaves exactly the
warehouse a full rebuild gives (every `mart` and `matching` table, row for row).

Sequences come from `recon_pipeline.demo.sequences` (seeded: new rows and upserts as the as-of
moves, late drops, re-sent files, bank reversals, write-off reversals, feedback, customer
updates, reruns at the same as-of and ten minutes later). After every run the stored links
are also checked against the engine evaluating every line from the same staging models.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from recon_pipeline import run_state, stages
from recon_pipeline.as_of import parse_as_of
from recon_pipeline.dashboard.feedback import MatchDecision, write_decision
from recon_pipeline.demo.generator import generate_demo
from recon_pipeline.demo.sequences import apply_step, drop_sequence
from recon_pipeline.matching import seam
from recon_pipeline.matching.engine import build_receipt_links
from recon_pipeline.matching.seam import read_matching_inputs
from recon_pipeline.pipeline import run_pipeline
from recon_pipeline.publish.publication import default_published_path
from recon_pipeline.settings import DBT_PROJECT_DIR, load_settings
from recon_pipeline.stages import PipelineError
from recon_pipeline.warehouse import connect
from tests.matching.test_incremental import comparable_links

SEQUENCES = 20
# Tables that keep one row per run (history) hold every as-of of the incremental warehouse but
# only the last one of a fresh rebuild: compared at the last as-of only.
_PER_AS_OF = {"mart.health_metrics": "as_of"}
_FIRST_SEEN = {"mart.alerts": "first_seen_as_of"}  # when the open alert was first raised: history too
_HISTORY = {"mart.alert_history", "mart.alert_dispatch_log", "mart.diff_history", "mart.alert_sla"}
_STATE = {"matching.line_state", "matching.line_keys", "matching.input_state", "matching.learned_state",
          "matching.context_state"}


@pytest.fixture(scope="module")
def base_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate_demo(out, seed=23, n_bank_lines=200)
    return out


@pytest.fixture(scope="module")
def first_runs(base_world, tmp_path_factory):
    """The warehouse after a sequence's first run, per as-of: sequences starting alike share it."""
    done: dict[str, Path] = {}

    def warehouse_after(as_of_text: str, settings) -> Path:
        if as_of_text not in done:
            path = tmp_path_factory.mktemp("first") / "recon.duckdb"
            run_pipeline(base_world / "landing", path, parse_as_of(as_of_text, settings.timezone), settings,
                         echo=lambda line: None)
            done[as_of_text] = path
        return done[as_of_text]
    return warehouse_after


def _tables(conn) -> list[str]:
    rows = conn.execute(
        """SELECT table_schema || '.' || table_name FROM information_schema.tables
           WHERE table_schema IN ('mart', 'matching') AND table_type = 'BASE TABLE' ORDER BY 1""").fetchall()
    return [r[0] for r in rows if r[0] not in _STATE | _HISTORY]


def _content(conn, table: str, as_of) -> list[tuple]:
    where = f" WHERE {_PER_AS_OF[table]} = ?" if table in _PER_AS_OF else ""
    columns = f"* EXCLUDE ({_FIRST_SEEN[table]})" if table in _FIRST_SEEN else "*"
    return conn.execute(f"SELECT {columns} FROM {table}{where} ORDER BY ALL", [as_of] if where else []).fetchall()


def _stored_links(conn) -> pd.DataFrame:
    frame = conn.execute(
        """SELECT account_no, txn_id, customer_id, order_id, CAST(allocated_amount * 100 AS BIGINT) AS allocated_cents,
                  match_method, match_score, match_status, evidence FROM matching.receipt_links""").df()
    return comparable_links(frame)


@pytest.mark.e2e
@pytest.mark.parametrize("seed", range(SEQUENCES))
def test_incremental_runs_equal_a_full_rebuild(base_world, first_runs, tmp_path, seed):
    shutil.copytree(base_world / "landing", tmp_path / "landing")
    shutil.copytree(base_world / "ground_truth", tmp_path / "ground_truth")
    landing = tmp_path / "landing"
    settings = load_settings()
    warehouse = tmp_path / "incremental" / "recon.duckdb"
    steps = drop_sequence(landing, seed, runs=3)
    # The first run (nothing added yet) is shared: a copy of that warehouse and its publication.
    first = first_runs(steps[0].as_of_text, settings)
    warehouse.parent.mkdir()
    shutil.copy(first, warehouse)
    shutil.copy(default_published_path(first), default_published_path(warehouse))
    for number, step in enumerate(steps[1:], 1):
        apply_step(landing, step)
        as_of = parse_as_of(step.as_of_text, settings.timezone)
        result = run_pipeline(landing, warehouse, as_of, settings, echo=lambda line: None)
        if number and not step.files and steps[number - 1].as_of == step.as_of:
            assert result.skipped, "a rerun with the same inputs and as-of recomputes nothing"
        with connect(warehouse) as conn:
            expected = comparable_links(build_receipt_links(read_matching_inputs(conn, as_of), settings))
            stored = _stored_links(conn)
        pd.testing.assert_frame_equal(stored, expected, obj=f"links after run {number} {step.events}")

    rebuilt = tmp_path / "full" / "recon.duckdb"
    last = parse_as_of(steps[-1].as_of_text, settings.timezone)
    run_pipeline(landing, rebuilt, last, settings, echo=lambda line: None, full_refresh=True)
    with connect(warehouse, read_only=True) as inc, connect(rebuilt, read_only=True) as full:
        tables = _tables(full)
        assert "mart.fct_order_reconciliation" in tables and "matching.receipt_links" in tables
        assert _tables(inc) == tables
        naive = last.replace(tzinfo=None)
        for table in tables:
            assert _content(inc, table, naive) == _content(full, table, naive), f"{table} differs (seed {seed})"


def _unit_tests_run(outcomes: list) -> int:
    """dbt unit tests among the nodes the dbt steps of a run executed (and forget them)."""
    count = sum(1 for outcome in outcomes for unique_id, _ in outcome.nodes if unique_id.startswith("unit_test."))
    outcomes.clear()
    return count


@pytest.mark.e2e
def test_a_day_later_reevaluates_only_the_affected_lines(base_world, tmp_path, monkeypatch):
    shutil.copytree(base_world / "landing", tmp_path / "landing")
    landing, settings = tmp_path / "landing", load_settings()
    warehouse = tmp_path / "recon.duckdb"
    outcomes, real_build = [], stages.dbt_build
    monkeypatch.setattr(stages, "dbt_build", lambda *args, **kwargs: outcomes.append(real_build(*args, **kwargs)) or outcomes[-1])
    unit_tests = sum(len(yaml.safe_load(path.read_text(encoding="utf-8")).get("unit_tests") or [])
                     for path in Path(DBT_PROJECT_DIR, "models").rglob("*.yml"))
    first = run_pipeline(landing, warehouse, parse_as_of("2025-04-28T09:00:00", settings.timezone), settings,
                         echo=lambda line: None)
    assert first.matching.full
    assert _unit_tests_run(outcomes) == unit_tests > 0  # the first run of this code version
    later = run_pipeline(landing, warehouse, parse_as_of("2025-04-29T09:00:00", settings.timezone), settings,
                         echo=lambda line: None)
    assert not later.matching.full
    with connect(warehouse, read_only=True) as conn:
        lines = conn.execute("SELECT count(*) FROM matching.line_state").fetchone()[0]
    assert 0 < later.matching.evaluated_lines < lines / 2
    assert later.tests_run == ["dbt_staging", "dbt_marts"]
    assert _unit_tests_run(outcomes) == 0  # new data, same code: the SQL's rules passed already
    minutes = run_pipeline(landing, warehouse, parse_as_of("2025-04-29T09:10:00", settings.timezone), settings,
                           echo=lambda line: None)
    assert minutes.tests_run == [] and not minutes.skipped  # the as-of moved: rebuilt, not re-tested
    again = run_pipeline(landing, warehouse, parse_as_of("2025-04-29T09:10:00", settings.timezone), settings,
                         echo=lambda line: None)
    assert again.skipped and "ingest" in again.stage_seconds and "dbt_marts" not in again.stage_seconds

    # An analyst edits a model: a new code version, whose unit tests run on the next run.
    for module in (stages, seam, run_state):
        monkeypatch.setattr(module, "code_fingerprint", lambda: "edited-model")
    edited = run_pipeline(landing, warehouse, parse_as_of("2025-04-29T09:20:00", settings.timezone), settings,
                          echo=lambda line: None)
    assert edited.tests_run == ["dbt_staging", "dbt_marts"] and _unit_tests_run(outcomes) == unit_tests


@pytest.mark.e2e
def test_the_marts_tests_run_after_a_run_that_failed_between_matching_and_the_marts(base_world, tmp_path, monkeypatch):
    # Only the as-of moves (09:00 -> 09:10) and finance's confirmation decided at 09:05 becomes
    # effective: matching changes links, the marts step fails. The next run at 09:10 has nothing
    # left to match and the same data, yet the marts' tests must run on those links.
    shutil.copytree(base_world / "landing", tmp_path / "landing")
    landing, settings = tmp_path / "landing", load_settings()
    warehouse = tmp_path / "recon.duckdb"
    first = parse_as_of("2025-04-28T09:00:00", settings.timezone)
    run_pipeline(landing, warehouse, first, settings, echo=lambda line: None)
    with connect(warehouse, read_only=True) as conn:
        account_no, txn_id, customer_id = conn.execute(
            """SELECT account_no, txn_id, customer_id FROM matching.receipt_links
               WHERE match_status IN ('suggested', 'auto_linked') AND customer_id IS NOT NULL ORDER BY ALL LIMIT 1""").fetchone()
    write_decision(landing, first + timedelta(minutes=5),
                   MatchDecision(account_no, txn_id, customer_id, "", "confirm", "财务 张三"), datetime(2025, 4, 28, 9, 5))
    run_pipeline(landing, warehouse, first, settings, echo=lambda line: None)  # the drop arrives, not yet decided

    later = first + timedelta(minutes=10)
    real_marts = stages.dbt_marts

    def failing_marts(*args, **kwargs):
        raise PipelineError("dbt 失败（测试注入）")

    monkeypatch.setattr(stages, "dbt_marts", failing_marts)
    with pytest.raises(PipelineError):
        run_pipeline(landing, warehouse, later, settings, echo=lambda line: None)
    monkeypatch.setattr(stages, "dbt_marts", real_marts)
    again = run_pipeline(landing, warehouse, later, settings, echo=lambda line: None)
    assert not again.matching.full and again.matching.evaluated_lines == 0  # nothing left to match
    assert "dbt_marts" in again.tests_run
    with connect(warehouse, read_only=True) as conn:
        status = conn.execute("SELECT DISTINCT match_status FROM matching.receipt_links WHERE account_no = ? AND txn_id = ?",
                              [account_no, txn_id]).fetchall()
    assert status == [("confirmed",)]  # the decision did take effect at 09:10
