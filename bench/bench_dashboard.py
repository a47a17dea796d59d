"""Dashboard page times on a published mart the size of a 1M-bank-line run.

Builds a synthetic warehouse whose `mart` has the contract's tables at the volume 1M bank
lines give (1M receipt-match rows, 200k orders, 20k customers, alert and diff lists of tens
of thousands), publishes it with `publish_mart`, serves the dashboard on 127.0.0.1 and times
each page over HTTP (server-side rendering, what the 1 s budget is about). The baseline,
measured in the same run, is the same pages on the small test fixture mart: the ratio is
what volume costs.

    .venv/bin/python bench/bench_dashboard.py [--bank-lines 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recon_pipeline.dashboard import DashboardConfig  # noqa: E402
from recon_pipeline.publish.publication import publish_mart  # noqa: E402
from tests.conftest import AS_OF, build_fixture_warehouse, running_dashboard  # noqa: E402

BUDGET_SECONDS = 1.0
PAGES = [
    ("总览", "/"),
    ("总览·按销售筛选区域", "/?region=BJ&group_by=salesperson&period=2025-02"),
    ("搜索·变形订单号", "/search?q=24bj12"),
    ("搜索·客户名", "/search?q=客户名称123"),
    ("搜索·金额", "/search?q=¥12,345.00"),
    ("搜索·发票号", "/search?q=inv{order_id}"),
    ("搜索·付款户名", "/search?q=付款单位1234"),
    ("订单列表", "/orders"),
    ("订单列表·筛选排序", "/orders?region=BJ&stage=awaiting_payment&sort=outstanding_amount&dir=desc&page=3"),
    ("订单详情", "/orders/{order_id}"),
    ("客户详情", "/customers/{customer_id}"),
    ("客户详情·到账排序", "/customers/{customer_id}?r_sort=amount&r_dir=desc"),
    ("我的业绩", "/salespeople/{salesperson_id}?period=2025-03"),
    ("健康看板", "/health"),
    ("预警", "/alerts"),
    ("预警·一级筛选", "/alerts?level=1&status=all"),
    ("差额清单", "/diff-list?diff_type=receipt_without_contract"),
    ("客户·全部", "/customers?scope=all"),
    ("财务复核队列", "/review"),
    ("导出·订单详情整页", "/orders/{order_id}?format=xlsx"),
    ("导出·总览整页", "/?format=xlsx"),
    ("导出·健康看板整页", "/health?format=xlsx"),
]


def build_large_warehouse(path: Path, bank_lines: int) -> dict[str, int]:
    """A warehouse whose mart has the shape and volume `bank_lines` bank lines give."""
    orders = bank_lines // 5
    customers = max(orders // 10, 10)
    conn = duckdb.connect(str(path))
    try:
        conn.execute("SET preserve_insertion_order = false")
        conn.execute("CREATE SCHEMA mart")
        # 24 months of orders ending at the as-of (2025-03-29); hash() gives stable pseudo-randomness.
        conn.execute(
            f"""
            CREATE TABLE mart.fct_order_reconciliation AS
            WITH base AS (
              SELECT i, hash(i) AS h,
                     TIMESTAMP '2023-04-01' + to_seconds(CAST(hash(i, 'signed') % (729 * 86400) AS BIGINT)) AS signed_at,
                     CAST(1000 + hash(i, 'amount') % 500000 AS DECIMAL(18,2)) AS contract_amount
              FROM range({orders}) t(i)
            )
            -- IDs of the contract's form [YY][region][5-digit serial], unique per order.
            SELECT printf('%02d%s%05d', 23 + (i % 3), ['SH','BJ','GZ','SZ','HZ','NJ','WH','CD'][1 + (i // 3) % 8],
                          (i // 24) % 100000) AS order_id,
                   'C' || CAST(h % {customers} AS VARCHAR) AS customer_id,
                   'S' || CAST(h % 200 AS VARCHAR) AS salesperson_id,
                   ['SH','BJ','GZ','SZ','HZ','NJ','WH','CD'][1 + (i // 3) % 8] AS region_code,
                   '行业' || CAST(h % 10 AS VARCHAR) AS industry,
                   contract_amount,
                   CASE WHEN h % 10 < 8 THEN contract_amount ELSE 0 END AS invoiced_amount,
                   CASE WHEN h % 10 < 7 THEN contract_amount ELSE 0 END AS received_amount,
                   CASE WHEN h % 10 < 6 THEN contract_amount ELSE 0 END AS written_off_amount,
                   CASE WHEN h % 10 < 7 THEN 0 ELSE contract_amount END AS outstanding_amount,
                   CASE WHEN h % 20 = 0 THEN NULL ELSE signed_at END AS sales_leg_closed_at,
                   CASE WHEN h % 10 < 5 THEN signed_at + INTERVAL 10 DAY END AS legal_leg_closed_at,
                   CASE WHEN h % 10 < 6 THEN signed_at + INTERVAL 20 DAY END AS finance_leg_closed_at,
                   h % 10 < 5 AS is_closed,
                   CASE WHEN h % 10 < 5 THEN strftime(signed_at + INTERVAL 25 DAY, '%Y-%m') END AS recognized_period,
                   CASE WHEN h % 10 < 5 THEN 'closed' ELSE 'signed' END AS status,
                   '客户名称' || CAST(h % {customers} AS VARCHAR) || '有限公司' AS customer_name,
                   signed_at, 'HT-' || CAST(i AS VARCHAR) AS contract_no
            FROM base
            """
        )
        conn.execute(
            f"""
            CREATE TABLE mart.fct_receipt_matches AS
            WITH lines AS (
              SELECT i, hash(i, 'txn') AS h,
                     TIMESTAMP '2023-04-01' + to_seconds(CAST(hash(i, 'time') % (729 * 86400) AS BIGINT)) AS txn_time
              FROM range({bank_lines}) t(i)
            ), picked AS (
              SELECT l.*, o.order_id, o.customer_id, o.contract_amount
              FROM lines l JOIN mart.fct_order_reconciliation o ON o.contract_no = 'HT-' || CAST(l.h % {orders} AS VARCHAR)
            )
            SELECT '6222' || CAST(h % 5 AS VARCHAR) AS account_no, 'TX' || CAST(i AS VARCHAR) AS txn_id,
                   CASE WHEN h % 100 < 95 THEN customer_id END AS customer_id,
                   CASE WHEN h % 100 < 92 THEN order_id END AS order_id,
                   CAST(contract_amount / 5 AS DECIMAL(18,2)) AS allocated_amount,
                   CASE WHEN h % 100 < 60 THEN 'memo_order_id' WHEN h % 100 < 88 THEN 'exact_name'
                        WHEN h % 100 < 95 THEN 'fuzzy' ELSE 'none' END AS match_method,
                   CASE WHEN h % 100 < 88 THEN 100 WHEN h % 100 < 95 THEN 85 + CAST(h % 15 AS INTEGER) ELSE 0 END AS match_score,
                   CASE WHEN h % 100 < 88 THEN 'auto_linked' WHEN h % 100 < 90 THEN 'confirmed'
                        WHEN h % 100 < 95 THEN 'suggested' ELSE 'unmatched' END AS match_status,
                   txn_time, CAST(contract_amount / 5 AS DECIMAL(18,2)) AS amount,
                   '付款单位' || CAST(h % 30000 AS VARCHAR) AS counterparty_name, '货款' AS memo,
                   '{{"payer_normalized": "付款单位", "payer_core": "付款", "candidate_name": "客户名称有限公司", "score": 90}}' AS evidence
            FROM picked
            """
        )
        conn.execute(
            """
            CREATE TABLE mart.salesperson_period_summary AS
            SELECT salesperson_id, strftime(signed_at, '%Y-%m') AS period,
                   sum(contract_amount) AS signed_amount,
                   sum(contract_amount) FILTER (WHERE is_closed) AS recognized_amount,
                   sum(received_amount) AS collected_amount,
                   0.2::DOUBLE AS discrepancy_rate, salesperson_id < 'S3' AS needs_review
            FROM mart.fct_order_reconciliation WHERE signed_at IS NOT NULL GROUP BY ALL
            """
        )
        conn.execute(
            f"""
            CREATE TABLE mart.alerts AS
            SELECT 'A' || CAST(i AS VARCHAR) AS alert_id,
                   CASE WHEN i % 10 < 2 THEN 1 WHEN i % 10 < 8 THEN 2 WHEN i % 10 = 8 THEN 3 END AS alert_level,
                   CASE WHEN i % 10 < 2 THEN 'amount_mismatch' WHEN i % 10 < 8 THEN 'receipt_not_written_off'
                        WHEN i % 10 = 8 THEN 'salesperson_discrepancy' ELSE 'cutoff_unarchived' END AS alert_type,
                   'TX' || CAST(i * 7 AS VARCHAR) AS entity_id,
                   's' || CAST(i % 200 AS VARCHAR) || '@example.com' AS recipient,
                   TIMESTAMP '{AS_OF}' AS as_of, '预警消息 ' || CAST(i AS VARCHAR) AS message,
                   'docs/runbook.md#amount_mismatch' AS runbook_url, NULL::VARCHAR AS cc
            FROM range({bank_lines // 20}) t(i)
            """
        )
        conn.execute(
            f"""
            CREATE TABLE mart.diff_list AS
            SELECT DATE '2025-03-29' - CAST(i % 30 AS INTEGER) AS as_of_date,
                   CASE i % 3 WHEN 0 THEN 'contract_without_receipt' WHEN 1 THEN 'receipt_without_contract'
                        ELSE 'archive_without_order' END AS diff_type,
                   CASE i % 3 WHEN 0 THEN (SELECT NULL) END AS _unused,
                   'HT-' || CAST(i AS VARCHAR) AS entity_id,
                   CAST(100 + i % 90000 AS DECIMAL(18,2)) AS amount
            FROM range({bank_lines // 10}) t(i)
            """
        )
        conn.execute("ALTER TABLE mart.diff_list DROP COLUMN _unused")
        conn.execute(
            f"""
            CREATE TABLE mart.health_metrics AS
            SELECT TIMESTAMP '{AS_OF}' - to_days(CAST(d AS INTEGER)) AS as_of, metric,
                   CASE metric WHEN 'contract_receipt_match_rate' THEN 0.9 + (d % 10) / 100.0 ELSE d % 50 END::DOUBLE AS value,
                   CASE metric WHEN 'contract_receipt_match_rate' THEN 0.95 ELSE 10 END::DOUBLE AS threshold,
                   CASE WHEN d % 3 = 0 THEN 'red' ELSE 'green' END AS status
            FROM range(730) t(d),
                 (VALUES ('contract_receipt_match_rate'), ('hours_to_cutoff'), ('unarchived_signed_contracts'),
                         ('stalled_approvals'), ('avg_approval_hours'), ('high_risk_customers')) m(metric)
            """
        )
        conn.execute(
            f"""
            CREATE TABLE mart.customer_collection_health AS
            SELECT 'C' || CAST(i AS VARCHAR) AS customer_id, '客户名称' || CAST(i AS VARCHAR) || '有限公司' AS customer_name,
                   i % 20 = 0 AS high_risk, CASE WHEN i % 20 = 0 THEN '回款逾期超过 30 天' END AS reason
            FROM range({customers}) t(i)
            """
        )
        # The dashboard's own marts at the same volume.
        conn.execute("""ALTER TABLE mart.fct_order_reconciliation ADD COLUMN salesperson_name VARCHAR""")
        conn.execute("""UPDATE mart.fct_order_reconciliation SET salesperson_name = '销售' || salesperson_id""")
        conn.execute(
            f"""CREATE TABLE mart.dim_customers AS
                SELECT 'C' || CAST(i AS VARCHAR) AS customer_id, '客户名称' || CAST(i AS VARCHAR) || '有限公司' AS customer_name,
                       NULL::VARCHAR AS credit_code, '简称' || CAST(i AS VARCHAR) AS aliases, 'R' || CAST(i % 8 AS VARCHAR) AS region_code,
                       '行业' || CAST(i % 10 AS VARCHAR) AS industry, 'S' || CAST(i % 200 AS VARCHAR) AS owner_salesperson_id,
                       '销售S' || CAST(i % 200 AS VARCHAR) AS owner_salesperson_name, NULL::TIMESTAMP AS updated_at
                FROM range({customers}) t(i)"""
        )
        conn.execute(
            """CREATE TABLE mart.dim_salespeople AS
               SELECT 'S' || CAST(i AS VARCHAR) AS salesperson_id, '销售S' || CAST(i AS VARCHAR) AS salesperson_name,
                      's' || CAST(i AS VARCHAR) || '@example.com' AS email, 'm' || CAST(i % 20 AS VARCHAR) || '@example.com' AS manager_email,
                      NULL::VARCHAR AS manager_salesperson_id, NULL::VARCHAR AS manager_name, 'R' || CAST(i % 8 AS VARCHAR) AS region_code,
                      NULL::TIMESTAMP AS updated_at
               FROM range(200) t(i)"""
        )
        conn.execute(
            """CREATE TABLE mart.fct_invoices AS
               SELECT 'INV' || order_id AS invoice_no, order_id, customer_name, CAST(signed_at AS DATE) + 5 AS invoice_date,
                      invoiced_amount AS amount_excl_tax, CAST(0 AS DECIMAL(18,2)) AS tax_amount, invoiced_amount AS total_amount,
                      'normal' AS invoice_type, 'issued' AS status, TRUE AS counts, invoiced_amount AS counted_amount,
                      NULL::TIMESTAMP AS updated_at
               FROM mart.fct_order_reconciliation WHERE invoiced_amount > 0"""
        )
        conn.execute(
            """CREATE TABLE mart.fct_writeoffs AS
               SELECT 'WO' || txn_id AS writeoff_id, txn_id, order_id, NULL::VARCHAR AS invoice_no, allocated_amount AS amount,
                      '财务' AS confirmed_by, txn_time + INTERVAL 2 DAY AS confirmed_at, 'active' AS status
               FROM mart.fct_receipt_matches WHERE match_status = 'confirmed'"""
        )
        conn.execute(
            """CREATE TABLE mart.fct_legal_archive AS
               SELECT 'GD' || order_id AS archive_no, order_id, 'approved' AS review_status, legal_leg_closed_at - INTERVAL 2 DAY AS submitted_at,
                      legal_leg_closed_at - INTERVAL 1 DAY AS reviewed_at, legal_leg_closed_at AS archived_at, NULL::TIMESTAMP AS updated_at
               FROM mart.fct_order_reconciliation WHERE legal_leg_closed_at IS NOT NULL"""
        )
        conn.execute(
            """CREATE TABLE mart.fct_order_events AS
               SELECT order_id, signed_at AS event_at, 'crm_status' AS event_type, 'signed' AS detail, 'submitted' AS previous_detail,
                      contract_amount AS amount FROM mart.fct_order_reconciliation WHERE signed_at IS NOT NULL
               UNION ALL
               SELECT order_id, txn_time, 'receipt', txn_id, match_status, allocated_amount FROM mart.fct_receipt_matches WHERE order_id IS NOT NULL"""
        )
        conn.execute("ALTER TABLE mart.alerts ADD COLUMN first_seen_as_of TIMESTAMP")
        conn.execute("ALTER TABLE mart.alerts ADD COLUMN salesperson_id VARCHAR")
        conn.execute("ALTER TABLE mart.alerts ADD COLUMN owner_name VARCHAR")
        conn.execute("ALTER TABLE mart.alerts ADD COLUMN order_id VARCHAR")
        conn.execute(f"UPDATE mart.alerts SET first_seen_as_of = TIMESTAMP '{AS_OF}' - INTERVAL 3 DAY, "
                     "salesperson_id = 'S' || CAST(hash(alert_id) % 200 AS VARCHAR), owner_name = '销售' || alert_id")
        conn.execute("ALTER TABLE mart.diff_list ADD COLUMN diff_id VARCHAR")
        conn.execute("UPDATE mart.diff_list SET diff_id = diff_type || '::' || entity_id")
        conn.execute(
            f"""CREATE TABLE mart.fct_alert_actions AS
                SELECT 'ACT' || CAST(i AS VARCHAR) AS action_id, 'alert' AS target_type, 'A' || CAST(i * 3 AS VARCHAR) AS target_id,
                       CASE i % 4 WHEN 0 THEN 'acknowledge' WHEN 1 THEN 'assign' WHEN 2 THEN 'comment' ELSE 'resolve' END AS action,
                       '处理人' AS assignee, '备注' AS note, '财务' AS acted_by,
                       TIMESTAMP '{AS_OF}' - INTERVAL 2 DAY + to_seconds(i) AS acted_at, DATE '2025-03-27' AS drop_date
                FROM range({bank_lines // 100}) t(i)"""
        )
        conn.execute(
            """CREATE TABLE mart.fct_match_feedback AS
               SELECT 'FB' || txn_id AS feedback_id, account_no, txn_id, customer_id, order_id, 'confirm' AS decision,
                      '财务' AS decided_by, txn_time + INTERVAL 1 DAY AS decided_at, NULL::VARCHAR AS comment,
                      CAST(txn_time AS DATE) AS drop_date, 'match_feedback/x.csv' AS source_file
               FROM mart.fct_receipt_matches WHERE match_status = 'confirmed'"""
        )
        conn.execute(
            f"""CREATE TABLE mart.alert_sla AS
                SELECT 'alert' AS item_type, alert_id AS item_id,
                       CASE WHEN alert_level IS NULL THEN 'reminder' ELSE 'level_' || CAST(alert_level AS VARCHAR) END AS item_class,
                       first_seen_as_of AS episode_start, NULL::TIMESTAMP AS episode_end, TRUE AS item_open, step,
                       first_seen_as_of + INTERVAL 1 DAY AS due_at, NULL::TIMESTAMP AS done_at, NULL::VARCHAR AS done_by,
                       CASE WHEN hash(alert_id, step) % 3 = 0 THEN 'met' ELSE 'overdue' END AS status,
                       'm1@example.com' AS escalate_to, alert_type || ' ' || entity_id AS title, owner_name AS owner,
                       TIMESTAMP '{AS_OF}' AS as_of
                FROM mart.alerts, (VALUES ('acknowledge'), ('resolve')) s(step)"""
        )
        return {
            name: conn.execute(f"SELECT count(*) FROM mart.{name}").fetchone()[0]
            for (name,) in conn.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'mart' ORDER BY 1").fetchall()
        }
    finally:
        conn.close()


def time_pages(config: DashboardConfig, repeat: int, ids: dict[str, str]) -> dict[str, tuple[float, float]]:
    """(first load, median of the next `repeat`) seconds per page."""
    times = {}
    with running_dashboard(config) as base:
        for label, template in PAGES:
            path = urllib.parse.quote(template.format(**ids), safe="/?=&%")
            samples = []
            for _ in range(repeat + 1):
                started = time.perf_counter()
                with urllib.request.urlopen(base + path, timeout=60) as response:
                    response.read()
                    assert response.status == 200, (path, response.status)
                samples.append(time.perf_counter() - started)
            times[label] = (samples[0], statistics.median(samples[1:]))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank-lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        small = publish_mart(build_fixture_warehouse(folder / "small.duckdb"), as_of=AS_OF)
        baseline = time_pages(DashboardConfig(published_path=small.published_path, landing_dir=folder / "landing"),
                              args.repeat, {"order_id": "25SH00002", "customer_id": "C001", "salesperson_id": "S01"})

        started = time.perf_counter()
        counts = build_large_warehouse(folder / "large.duckdb", args.bank_lines)
        build_seconds = time.perf_counter() - started
        stats = publish_mart(folder / "large.duckdb", as_of=AS_OF)
        print(f"synthetic mart from {args.bank_lines:,} bank lines built in {build_seconds:.1f} s: "
              + ", ".join(f"{name} {count:,}" for name, count in counts.items()))
        print(f"publish_mart: {stats.seconds:.2f} s, {stats.size_bytes / 1e6:.1f} MB published")

        with duckdb.connect(str(stats.published_path), read_only=True) as conn:
            order_id, customer_id, salesperson_id = conn.execute(
                "SELECT order_id, customer_id, salesperson_id FROM mart.fct_order_reconciliation ORDER BY order_id LIMIT 1 OFFSET 1234").fetchone()
        large = time_pages(DashboardConfig(published_path=stats.published_path, landing_dir=folder / "landing"), args.repeat,
                           {"order_id": order_id, "customer_id": customer_id, "salesperson_id": salesperson_id})

    print(f"\n{'page':<24}{'baseline (fixture)':>20}{'large, first':>16}{'large, median':>17}{'ratio':>8}  budget {BUDGET_SECONDS:.0f} s")
    worst = 0.0
    for label, _ in PAGES:
        base_median = baseline[label][1]
        first, median = large[label]
        worst = max(worst, first, median)
        print(f"{label:<24}{base_median * 1000:>17.0f} ms{first * 1000:>13.0f} ms{median * 1000:>14.0f} ms"
              f"{median / base_median:>7.1f}x  {'ok' if max(first, median) < BUDGET_SECONDS else 'OVER'}")
    print(f"\nslowest page load: {worst:.2f} s ({'within' if worst < BUDGET_SECONDS else 'OVER'} the {BUDGET_SECONDS:.0f} s budget)")
    return 0 if worst < BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
