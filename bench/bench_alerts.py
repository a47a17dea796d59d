"""Alert evaluation, history and health board at volume.

Fills the fixture tables (tests/alerts/conftest.py) with N orders and 5N bank credits in SQL,
then times evaluate+write alerts and the health refresh at N and 10N. The ratio against the
small run (measured in the same process) shows whether the work grows linearly.

    .venv/bin/python bench/bench_alerts.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recon_pipeline.alerts import health  # noqa: E402
from recon_pipeline.alerts import rules as alerts  # noqa: E402
from recon_pipeline.settings import load_settings  # noqa: E402
from tests.alerts.conftest import FixtureWarehouse  # noqa: E402

AS_OF = datetime(2025, 3, 29, 12, 0)


def fill(wh: FixtureWarehouse, orders: int) -> None:
    conn = wh.conn
    conn.execute(
        "INSERT INTO staging.stg_salespeople (salesperson_id, name, email, manager_email) "
        "SELECT 'S' || i, '销售' || i, 's' || i || '@example.com', 'boss' || (i % 10) || '@example.com' "
        "FROM range(200) t(i)"
    )
    conn.execute(
        "INSERT INTO staging.stg_customers (customer_id, customer_name, owner_salesperson_id) "
        "SELECT 'C' || i, '客户' || i, 'S' || (i % 200) FROM range(?) t(i)", [max(orders // 5, 1)]
    )
    conn.execute(
        """
        INSERT INTO staging.stg_crm_contracts (order_id, customer_id, salesperson_id, amount, status, signed_at,
                                               approval_status, approval_submitted_at)
        SELECT 'O' || i, 'C' || (i % ?), 'S' || (i % 200), 1000 + (i % 97), 'signed',
               TIMESTAMP '2024-12-01' + to_minutes(i * 7 % 170000),
               CASE WHEN i % 50 = 0 THEN 'pending' ELSE 'approved' END,
               TIMESTAMP '2025-03-29 00:00:00' + to_minutes(i % 700)
        FROM range(?) t(i)
        """,
        [max(orders // 5, 1), orders],
    )
    conn.execute(
        "INSERT INTO staging.stg_legal_archive (archive_no, order_id, review_status, archived_at) "
        "SELECT 'A' || i, 'O' || i, 'approved', TIMESTAMP '2025-03-01' FROM range(?) t(i) WHERE i % 7 <> 0",
        [orders],
    )
    conn.execute(
        """
        INSERT INTO staging.stg_bank_transactions (account_no, txn_id, txn_time, amount)
        SELECT 'ACC', 'T' || i, TIMESTAMP '2024-12-01' + to_minutes(i * 3 % 170000), 200 + (i % 97) / 5
        FROM range(?) t(i)
        """,
        [orders * 5],
    )
    conn.execute(
        """
        INSERT INTO mart.fct_receipt_matches
        SELECT b.account_no, b.txn_id, 'C' || (i % ?),
               CASE WHEN i % 20 = 0 THEN NULL ELSE 'O' || (i % ?) END, b.amount, 'memo_order_id', 100,
               CASE WHEN i % 20 = 0 THEN 'unmatched' ELSE 'auto_linked' END, b.txn_time, b.amount, '某公司', '',
               CASE WHEN i % 500 = 0 THEN '{"amount_mismatch": true}' ELSE '{}' END
        FROM staging.stg_bank_transactions b, (SELECT CAST(substr(b2.txn_id, 2) AS BIGINT) AS i, b2.txn_id
                                             FROM staging.stg_bank_transactions b2) k
        WHERE k.txn_id = b.txn_id
        """,
        [max(orders // 5, 1), orders],
    )
    conn.execute(
        "INSERT INTO staging.stg_finance_writeoffs (writeoff_id, txn_id, order_id, amount, status) "
        "SELECT 'W' || i, 'T' || i, 'O' || (i % ?), 1, 'active' FROM range(?) t(i) WHERE i % 3 <> 0",
        [orders, orders * 5],
    )
    conn.execute(
        """
        INSERT INTO mart.salesperson_period_summary (salesperson_id, period, signed_amount, recognized_amount)
        SELECT 'S' || i, p, 100000, 80000 + (i % 40) * 1000 FROM range(200) t(i), (VALUES ('2025-01'), ('2025-02')) v(p)
        """
    )


def measure(orders: int) -> tuple[float, float, int]:
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        wh = FixtureWarehouse(Path(tmp) / "bench.duckdb")
        fill(wh, orders)
        start = time.perf_counter()
        table = alerts.refresh_alerts(wh.conn, AS_OF, settings)
        alerts.refresh_alerts(wh.conn, AS_OF, settings)  # the repeated run
        alert_seconds = time.perf_counter() - start
        start = time.perf_counter()
        health.refresh_health(wh.conn, AS_OF, settings)
        health_seconds = time.perf_counter() - start
        wh.close()
    return alert_seconds, health_seconds, len(table)


def main() -> None:
    base = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    small = measure(base)
    large = measure(base * 10)
    for label, (a, h, n) in (("N", small), ("10N", large)):
        print(f"{label:>4}: orders={base if label == 'N' else base * 10:>7} alerts={n:>6} "
              f"alerts(2 runs)={a:6.2f}s health={h:6.2f}s")
    print(f"ratio 10N/N: alerts {large[0] / small[0]:.1f}x, health {large[1] / small[1]:.1f}x (linear = 10x)")


if __name__ == "__main__":
    main()
