"""Benchmark of the month-end close at scale: closing periods, the close stage of each run, a statement.

    python bench/bench_close.py --bank-lines 100000

Generates the demo scaled to N bank lines (in a child process), runs the pipeline once (the
baseline: a full `recon run`, measured in the same process), then closes every period whose
cutoff has passed (freeze + adjustments + republish, each timed), runs the close stage again
with nothing changed (what every later run pays), and builds and writes the 业绩确认单 of the
salesperson with the most orders. Prints seconds and each figure's ratio to the full run.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon_pipeline.as_of import cutoff_moment, parse_as_of  # noqa: E402
from recon_pipeline.close.commands import close_command  # noqa: E402
from recon_pipeline.close.export import statement_xlsx  # noqa: E402
from recon_pipeline.close.stage import refresh_close  # noqa: E402
from recon_pipeline.close.statement import build_statement  # noqa: E402
from recon_pipeline.demo.clock import AS_OF as DEMO_AS_OF  # noqa: E402
from recon_pipeline.pipeline import run_pipeline  # noqa: E402
from recon_pipeline.publish.publication import default_published_path  # noqa: E402
from recon_pipeline.settings import load_settings  # noqa: E402
from recon_pipeline.warehouse import connect  # noqa: E402


def timed(label: str, figures: dict[str, float], action):
    started = time.perf_counter()
    result = action()
    figures[label] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bank-lines", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-close-"))
    try:
        subprocess.run([sys.executable, "-m", "recon_pipeline.cli", "demo", "--out", str(root / "demo"),
                        "--bank-lines", str(args.bank_lines)], check=True, capture_output=True)
        settings = load_settings()
        as_of = parse_as_of(str(DEMO_AS_OF), settings.timezone)
        warehouse = root / "recon.duckdb"
        figures: dict[str, float] = {}
        timed("full run (baseline)", figures,
              lambda: run_pipeline(root / "demo" / "landing", warehouse, as_of, settings))
        with connect(warehouse, read_only=True) as conn:
            periods = [row[0] for row in conn.execute(
                "SELECT DISTINCT period FROM mart.salesperson_period_summary ORDER BY 1").fetchall()]
            orders = conn.execute("SELECT count(*) FROM mart.fct_order_reconciliation").fetchall()[0][0]
            person = conn.execute(
                "SELECT salesperson_id FROM mart.fct_order_reconciliation GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
            ).fetchall()[0][0]
        closable = [p for p in periods if cutoff_moment(p, settings.cutoff_hour) < as_of]
        for period in closable:
            timed(f"close-period {period}", figures,
                  lambda: close_command(warehouse, period, settings, "bench", now=lambda: datetime(2025, 5, 6, 18)))
        with connect(warehouse) as conn:
            timed("close stage, nothing changed", figures, lambda: refresh_close(conn, as_of, settings))
        with connect(default_published_path(warehouse), read_only=True) as conn:
            statement = timed(f"statement {person} {closable[-1]}", figures,
                              lambda: build_statement(conn, person, closable[-1], settings))
        timed("statement xlsx", figures, lambda: statement_xlsx(statement))
        baseline = figures["full run (baseline)"]
        print(f"bank lines {args.bank_lines}, orders {orders}, closed periods {len(closable)}, "
              f"statement rows {len(statement.counted) + len(statement.not_counted)}")
        for label, seconds in figures.items():
            print(f"  {label:<40} {seconds:8.2f} s   {seconds / baseline:6.1%} of the full run")
        print(f"  peak RSS (this process) {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        if args.keep:
            print(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
