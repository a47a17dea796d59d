"""publish_mart: BI readers get a complete mart, never block the pipeline, and a failure
keeps the last good publication."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from recon_pipeline.publish.publication import (
    PublishError,
    default_published_path,
    publish_mart,
    publish_mart_from_connection,
)
from tests.conftest import AS_OF, build_fixture_warehouse

CONTRACT_TABLES = {
    "fct_order_reconciliation", "fct_receipt_matches", "alerts", "diff_list",
    "salesperson_period_summary", "health_metrics",
}


def signed_total(path: Path) -> str:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return str(conn.execute("SELECT sum(contract_amount) FROM mart.fct_order_reconciliation").fetchone()[0])
    finally:
        conn.close()


def test_default_published_path_sits_beside_the_warehouse():
    assert default_published_path("/data/recon.duckdb") == Path("/data/recon.published.duckdb")


def test_publication_holds_every_mart_relation_as_a_table(tmp_path):
    warehouse = build_fixture_warehouse(tmp_path / "recon.duckdb")

    stats = publish_mart(warehouse, as_of=AS_OF)

    assert stats.published_path == tmp_path / "recon.published.duckdb"
    assert stats.row_counts["fct_order_reconciliation"] == 7
    assert stats.row_counts["order_count"] == 1  # a view in the warehouse
    conn = duckdb.connect(str(stats.published_path), read_only=True)
    try:
        kinds = dict(conn.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'mart'"
        ).fetchall())
        assert CONTRACT_TABLES <= set(kinds)
        assert set(kinds.values()) == {"BASE TABLE"}  # self-contained: no view points elsewhere
        money_type = conn.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'fct_order_reconciliation' "
            "AND column_name = 'contract_amount'"
        ).fetchone()[0]
        assert money_type == "DECIMAL(18,2)"
        assert str(conn.execute("SELECT DISTINCT as_of FROM meta.publication").fetchone()[0]) == AS_OF
    finally:
        conn.close()
    assert list(tmp_path.glob("*.tmp-*")) == []


HOLDER = textwrap.dedent(
    """
    import sys, duckdb
    conn = duckdb.connect(sys.argv[1], read_only=True)
    query = "SELECT sum(contract_amount) FROM mart.fct_order_reconciliation"
    print(conn.execute(query).fetchone()[0], flush=True)
    sys.stdin.readline()  # hold the connection until the test has published again
    print(conn.execute(query).fetchone()[0], flush=True)
    """
)


def test_a_connected_reader_keeps_its_snapshot_and_a_new_one_sees_the_new_publication(tmp_path):
    warehouse = build_fixture_warehouse(tmp_path / "recon.duckdb")
    published = publish_mart(warehouse).published_path
    # A BI tool in its own process, connected to the publication while the next run publishes.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(published)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "434999.00"
        build_fixture_warehouse(warehouse, signed_scale=10)  # the next run: 25BJ00003 80k -> 800k

        publish_mart(warehouse)

        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "434999.00"
        assert signed_total(published) == "1154999.00"
    finally:
        holder.kill()
        holder.wait()


def test_a_failing_publish_leaves_the_last_good_publication(tmp_path):
    warehouse = build_fixture_warehouse(tmp_path / "recon.duckdb")
    published = publish_mart(warehouse).published_path
    build_fixture_warehouse(warehouse, signed_scale=10)
    conn = duckdb.connect(str(warehouse))
    conn.execute("CREATE VIEW mart.broken AS SELECT CAST('不是数字' AS INTEGER) AS n")
    conn.close()

    with pytest.raises(PublishError, match="已保留上一次的发布"):
        publish_mart(warehouse)

    assert signed_total(published) == "434999.00"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recon.duckdb", "recon.published.duckdb"]


def test_a_warehouse_without_mart_does_not_replace_the_publication(tmp_path):
    warehouse = build_fixture_warehouse(tmp_path / "recon.duckdb")
    published = publish_mart(warehouse).published_path
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()

    with pytest.raises(PublishError, match="没有 mart"):
        publish_mart(empty, published)

    assert signed_total(published) == "434999.00"


def test_publishing_from_the_pipelines_open_write_connection(tmp_path):
    warehouse = build_fixture_warehouse(tmp_path / "recon.duckdb")
    target = tmp_path / "bi" / "recon_mart.duckdb"
    conn = duckdb.connect(str(warehouse))
    try:
        stats = publish_mart_from_connection(conn, target, as_of=AS_OF)
        # The writer keeps working after publishing (nothing left attached).
        conn.execute("CREATE TABLE mart.after_publish AS SELECT 1 AS n")
    finally:
        conn.close()
    assert stats.row_counts["alerts"] == 8
    assert signed_total(target) == "434999.00"


def test_a_published_file_named_like_the_schema_is_refused(tmp_path):
    # `mart.duckdb` would make every `mart.<table>` query ambiguous for the BI tools.
    warehouse = build_fixture_warehouse(tmp_path / "recon.duckdb")
    with pytest.raises(PublishError, match="不能命名为 mart.duckdb"):
        publish_mart(warehouse, tmp_path / "mart.duckdb")


def test_a_build_abandoned_by_a_killed_publish_is_cleaned_up(tmp_path):
    warehouse = build_fixture_warehouse(tmp_path / "recon.duckdb")
    abandoned = tmp_path / "recon.published.duckdb.tmp-999999999"  # no such process
    abandoned.write_bytes(b"half a database")

    publish_mart(warehouse)

    assert not abandoned.exists()
