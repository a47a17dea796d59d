"""The demo on both engines: `recon run --engine spark` (local Spark, dbt-spark, matching on
Spark) publishes the same marts as `--engine duckdb`, row by row, money exact; the Dagster job
runs on Spark too; `--full-refresh` recomputes every stage on Spark and gives the same marts; a
Spark job that fails mid-run leaves the publication as it was.

One Spark session serves the whole module (started by the first Spark run, in this process),
so the group runs in one pytest worker (xdist_group). The demo gets finance's decisions on
suggested matches and people's actions on alerts besides, so that every dbt model has rows to
compare (the period-close tables stay empty: no period is closed).
"""

import csv
import math
import shutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from recon_pipeline.run_state import forget_fingerprints
from recon_pipeline.spark_session import JAVA_PACKAGE, java_executable
from recon_pipeline.warehouse import connect

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("spark")]

if java_executable() is None:
    pytest.skip(f"Spark 需要 Java 17（make test 以 root 运行时会用 apt 安装 {JAVA_PACKAGE}）", allow_module_level=True)


def _run(landing: Path, warehouse: Path, as_of, engine: str, full_refresh: bool = False):
    from recon_pipeline.pipeline import RunContext, RunOptions, run_stages
    from recon_pipeline.settings import load_settings

    run = RunContext(landing_dir=landing, warehouse=warehouse, as_of=as_of, settings=load_settings(),
                     options=RunOptions(engine=engine, full_refresh=full_refresh), echo=lambda line: None)
    return run_stages(run)


def _write_drop(landing: Path, source: str, day: str, rows: list[dict]) -> None:
    folder = landing / source / day
    folder.mkdir(parents=True)
    with open(folder / f"{source}.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _add_decisions(demo: Path, as_of) -> None:
    """Finance confirms two credits and rejects one suggestion; people act on an alert, a diff and
    the health board: the drop of the day before the as-of."""
    with open(demo / "ground_truth" / "bank_truth.csv", encoding="utf-8") as handle:
        credits = [r for r in csv.DictReader(handle) if r["true_customer_id"] and not r["strong_evidence"]
                   and r["amount"][0] != "-"]
    day = as_of.date() - timedelta(days=1)
    decided_at = f"{day} 10:00:00"
    feedback = [
        {"feedback_id": f"FB{n}", "account_no": line["account_no"], "txn_id": line["txn_id"], "customer_id": customer,
         "order_id": "", "decision": decision, "decided_by": "finance01", "decided_at": decided_at, "comment": "人工复核"}
        for n, (line, customer, decision) in enumerate([
            (credits[0], credits[0]["true_customer_id"], "confirm"),
            (credits[1], credits[1]["true_customer_id"], "confirm"),
            (credits[2], "C0001" if credits[2]["true_customer_id"] != "C0001" else "C0002", "reject")])
    ]
    _write_drop(demo / "landing", "match_feedback", str(day), feedback)
    actions = [
        {"action_id": f"A{n}", "target_type": kind, "target_id": target, "action": action, "assignee": "finance01",
         "note": "处理中", "acted_by": "manager01", "acted_at": decided_at}
        for n, (kind, target, action) in enumerate([("health", "auto_link_rate", "acknowledge"),
                                                    ("diff", "25BJ00001", "assign"), ("alert", "any", "comment")])
    ]
    _write_drop(demo / "landing", "alert_actions", str(day), actions)


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory):
    from recon_pipeline.as_of import parse_as_of
    from recon_pipeline.demo.generator import generate_demo

    root = tmp_path_factory.mktemp("engines")
    summary = generate_demo(root / "demo", seed=7)
    landing = root / "demo" / "landing"
    as_of = parse_as_of(str(summary.as_of), "Asia/Shanghai")
    _add_decisions(root / "demo", as_of)
    duck = _run(landing, root / "duck" / "recon.duckdb", as_of, "duckdb")
    spark = _run(landing, root / "spark" / "recon.duckdb", as_of, "spark")
    yield landing, as_of, duck, spark
    from recon_pipeline.spark_session import stop_spark_session

    stop_spark_session()


def _tables(path: Path) -> dict[str, list[tuple[str, str]]]:
    with duckdb.connect(str(path), read_only=True) as conn:
        rows = conn.execute("""SELECT table_name, column_name, data_type FROM information_schema.columns
                               WHERE table_schema = 'mart' AND table_catalog = current_database()
                               ORDER BY table_name, ordinal_position""").fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        tables.setdefault(table, []).append((column, kind))
    return tables


def _rows(path: Path, table: str, columns: list[tuple[str, str]]) -> list[tuple]:
    """Sorted rows; floats (ratios, averages: never money) last in the sort key, rounded."""
    exact = [f'"{c}"' for c, kind in columns if kind not in ("DOUBLE", "FLOAT")]
    floats = [f'round("{c}", 9)' for c, kind in columns if kind in ("DOUBLE", "FLOAT")]
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(f'SELECT * FROM mart."{table}" ORDER BY {", ".join([*exact, *floats]) or "ALL"}').fetchall()


def _same_value(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b and type(a) is type(b)


# Written only by `recon close`: empty until a period is closed.
CLOSE_TABLES = {"period_adjustments", "period_close", "period_close_excluded_orders", "period_close_log",
                "period_close_orders", "period_close_reconciliation"}


def assert_same_marts(expected: Path, actual: Path) -> None:
    """Every table of the published `mart`: same columns and types, same rows; DECIMAL money
    compared exactly (as Decimal), floats within 1e-12 (sums of doubles in another order). Every
    table but the close tables has rows: an empty comparison proves nothing."""
    tables = _tables(expected)
    assert tables == _tables(actual)
    assert {"fct_order_reconciliation", "fct_receipt_matches", "salesperson_period_summary", "diff_list", "alerts",
            "health_metrics", "fct_match_feedback", "fct_alert_actions"} <= set(tables)
    for table, columns in tables.items():
        mine, theirs = _rows(expected, table, columns), _rows(actual, table, columns)
        assert mine or table in CLOSE_TABLES, f"{table} is empty"
        assert len(mine) == len(theirs), table
        for left, right in zip(mine, theirs):
            different = [c for (c, _), a, b in zip(columns, left, right) if not _same_value(a, b)]
            assert not different, f"{table}: {different} {left} != {right}"


def test_spark_publishes_the_same_marts_as_duckdb(both_engines):
    _, _, duck, spark = both_engines
    assert spark.publication.published_path.name == "recon.published.duckdb"
    assert spark.link_counts == duck.link_counts
    assert spark.ingest.rows_loaded == duck.ingest.rows_loaded
    assert spark.ingest.rows_quarantined == duck.ingest.rows_quarantined > 0
    assert_same_marts(duck.publication.published_path, spark.publication.published_path)
    with duckdb.connect(str(spark.publication.published_path), read_only=True) as conn:
        money = conn.execute("SELECT sum(received_amount) FROM mart.fct_order_reconciliation").fetchone()[0]
    assert isinstance(money, Decimal) and money > 0


def test_a_second_spark_run_on_the_same_inputs_skips_every_stage_after_ingestion(both_engines):
    landing, as_of, _, spark = both_engines
    published = spark.publication.published_path.read_bytes()
    again = _run(landing, spark.warehouse, as_of, "spark")
    assert again.skipped == ["dbt_staging", "matching", "dbt_marts", "close", "alerts", "publish"]
    assert again.link_counts == spark.link_counts
    assert spark.publication.published_path.read_bytes() == published


def test_a_full_refresh_on_spark_recomputes_every_stage_and_publishes_the_same_marts(both_engines):
    landing, as_of, duck, spark = both_engines
    published = spark.publication.published_path
    # A publication that no longer matches its inputs: a rerun would skip (same inputs) and keep it.
    with duckdb.connect(str(published)) as conn:
        conn.execute("UPDATE mart.fct_order_reconciliation SET received_amount = 0")
    again = _run(landing, spark.warehouse, as_of, "spark", full_refresh=True)
    assert again.skipped == []
    assert {"dbt_staging", "matching", "dbt_marts", "alerts", "publish"} <= set(again.stage_seconds)
    assert again.tests_run == ["dbt_staging", "dbt_marts"]
    assert again.link_counts == spark.link_counts == duck.link_counts
    assert_same_marts(duck.publication.published_path, published)


def test_spark_tables_are_parquet_in_the_spark_folder_beside_the_warehouse(both_engines):
    _, _, _, spark = both_engines
    folder = spark.warehouse.with_name("recon.spark")
    assert any((folder / "warehouse" / "raw.db" / "bank_transactions").glob("_drop_date=*/*.parquet"))
    assert any((folder / "warehouse" / "mart.db" / "fct_order_reconciliation").glob("*.parquet"))
    assert (folder / "metastore" / "metastore_db").is_dir()
    assert (folder / "logs" / "spark.log").is_file()


def test_dagster_nightly_job_runs_on_spark(both_engines):
    import dagster as dg

    from recon_pipeline.definitions import defs
    from recon_pipeline.orchestration.resources import AS_OF_TAG, EngineResource, ReconResource

    landing, as_of, duck, spark = both_engines
    job = defs.get_job_def("nightly_reconciliation")
    resources = {"recon": ReconResource(landing_dir=str(landing), warehouse=str(spark.warehouse),
                                        engine=EngineResource(name="spark"))}
    before = spark.publication.published_path.stat().st_mtime_ns
    # The same inputs and as-of as the runs before: forget that they were published, else the job
    # stops after ingestion (tests/orchestration/test_incremental_runs.py).
    with connect(spark.warehouse) as conn:
        forget_fingerprints(conn, "run")
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), resources=resources,
                                    tags={AS_OF_TAG: as_of.isoformat()})
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"mart/fct_order_reconciliation", "matching/receipt_links", "publish/published_mart"} <= materialized
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert checks and all(c.passed for c in checks if c.asset_check_key.name.startswith("not_null"))
    assert spark.publication.published_path.stat().st_mtime_ns > before
    assert_same_marts(duck.publication.published_path, spark.publication.published_path)


def test_a_spark_job_failing_mid_run_keeps_the_last_good_publication(both_engines):
    from recon_pipeline.pipeline import PipelineError

    landing, as_of, _, spark = both_engines
    published = spark.publication.published_path
    before = published.read_bytes()
    # A new drop is loaded (ingest succeeds), then a Parquet file of the raw history turns out
    # unreadable: the dbt staging build's Spark job fails.
    days = sorted(p.name for p in (landing / "bank_transactions").iterdir())
    new_day = next(str(as_of.date() - timedelta(days=n)) for n in range(30)
                   if str(as_of.date() - timedelta(days=n)) not in days)
    shutil.copytree(landing / "bank_transactions" / days[0], landing / "bank_transactions" / new_day)
    damaged = next((spark.warehouse.with_name("recon.spark") / "warehouse" / "raw.db" / "customers").rglob("*.parquet"))
    damaged.write_bytes(b"not parquet")
    with pytest.raises(PipelineError) as caught:
        _run(landing, spark.warehouse, as_of, "spark")
    assert "\n" not in str(caught.value) and "失败" in str(caught.value)
    assert published.read_bytes() == before
