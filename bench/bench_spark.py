"""The Spark engine against the DuckDB engine at scale: wall time and peak memory per stage.

    python bench/bench_spark.py --base-lines 100000 --copies 10     # 1M bank lines
    python bench/bench_spark.py --base-lines 1000000 --copies 10    # 10M bank lines

Generating 10M lines with the Python demo generator would take ~40 GB, so the landing zone is
built another way: the demo generator writes a base landing zone (`--base-lines`), the DuckDB
engine ingests it (typed raw history), and DuckDB SQL replicates it `--copies` times as later
years of the same company: every date moved by k years, order IDs `25SH00137` -> `26SH00137` (in
the memos too, mangled forms included), invoice / write-off / archive / feedback / transaction
IDs suffixed `-Yk`; customers and salespeople are the same. Each copy is written as Parquet drops
(canonical columns) under its shifted drop dates, the as-of moves by `copies - 1` years. Rows the
base quarantined are not replicated.

Each engine then runs `recon run` in a child process (`--engine duckdb`, `--engine spark` with
master `local[2]`), with the memory of its whole process tree (JVM and Python workers included)
sampled every 100 ms, and capped (RLIMIT_AS per process, `--cap-gib`) so that a run that would
need more than the machine can spare fails instead of swapping: the figures say which.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import _tree_rss_kib  # noqa: E402
from recon_pipeline.as_of import as_of_text, parse_as_of  # noqa: E402
from recon_pipeline.demo.clock import AS_OF as DEMO_AS_OF  # noqa: E402
from recon_pipeline.ingest.loader import sync_landing  # noqa: E402
from recon_pipeline.settings import load_settings  # noqa: E402
from recon_pipeline.sources import SOURCES  # noqa: E402
from recon_pipeline.warehouse import connect  # noqa: E402

# Identifiers suffixed per copy (the order ID is moved by years instead); master data is not copied.
SUFFIXED = {"txn_id", "invoice_no", "writeoff_id", "archive_no", "feedback_id", "contract_no"}
MASTER_DATA = {"customers", "salespeople"}
ORDER_IN_MEMO = r"(?i)(^|[^0-9])25([-_ ]?[a-z]{2}[-_ ]?[0-9])"


def _shifted(column: str, kind: str, k: int) -> str:
    quoted = f'"{column}"'
    if k == 0:
        return quoted
    if kind in ("TIMESTAMP", "DATE"):
        return f"CAST({quoted} + INTERVAL {k} YEAR AS {kind})"
    if column == "order_id":
        return f"CASE WHEN regexp_matches({quoted}, '^[0-9]{{2}}') THEN lpad(CAST(CAST(substr({quoted}, 1, 2) AS INTEGER) + {k} AS VARCHAR), 2, '0') || substr({quoted}, 3) ELSE {quoted} END"
    if column == "memo":
        return f"regexp_replace({quoted}, '{ORDER_IN_MEMO}', '\\1{25 + k}\\2', 'g')"
    if column in SUFFIXED:
        return f"{quoted} || '-Y{k}'"
    return quoted


def replicate(base_warehouse: Path, landing: Path, copies: int) -> int:
    """Write `copies` years of Parquet drops from the base's raw history; returns bank lines."""
    conn = duckdb.connect(str(base_warehouse), read_only=True)
    try:
        for source, spec in SOURCES.items():
            columns = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'raw' "
                "AND table_name = ? ORDER BY ordinal_position", [source]).fetchall()
            canonical = [(c, t) for c, t in columns if c in spec.column_names]
            for k in range(1 if source in MASTER_DATA else copies):
                select = ", ".join(f"{_shifted(c, t, k)} AS \"{c}\"" for c, t in canonical)
                days = conn.execute(f"SELECT DISTINCT _drop_date FROM raw.{source}").fetchall()
                for (day,) in days:
                    folder = landing / source / day.replace(year=day.year + k).isoformat()
                    folder.mkdir(parents=True, exist_ok=True)
                    conn.execute(f"COPY (SELECT {select} FROM raw.{source} WHERE _drop_date = ? "
                                 f"ORDER BY _source_file, _row_number) TO '{folder / f'copy{k}.parquet'}' (FORMAT parquet)",
                                 [day])
        return conn.execute("SELECT count(*) FROM raw.bank_transactions").fetchone()[0] * copies
    finally:
        conn.close()


def measure(command: list[str], env: dict, cap_gib: float) -> dict:
    peak = [0]
    started = time.perf_counter()

    def cap() -> None:
        limit = int(cap_gib * 1024 ** 3)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    # The JVM reserves address space far beyond what it uses: the cap applies to the DuckDB
    # engine's process only; the Spark run's memory is bounded by its settings and measured.
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=cap if "duckdb" in command else None)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_kib(process.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    return {"seconds": round(time.perf_counter() - started, 1), "peak_gib": round(peak[0] / 1024 ** 2, 2),
            "exit": process.returncode, "stdout": out, "stderr": err.strip().splitlines()[-1:] if err else []}


def _stage_line(stdout: str) -> str:
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("耗时")), None)
    return " ".join(lines[start:start + 2]) if start is not None else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-lines", type=int, default=100_000)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="3g")
    parser.add_argument("--cap-gib", type=float, default=6.0)
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="recon-bench-spark-"))
    settings = load_settings()
    print(f"load average before: {os.getloadavg()}")

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "recon_pipeline.cli", "demo", "--out", str(work / "base"), "--seed", "11",
                    "--bank-lines", str(args.base_lines)], check=True, stdout=subprocess.DEVNULL)
    base_as_of = parse_as_of(DEMO_AS_OF, settings.timezone)
    with connect(work / "base.duckdb") as conn:
        sync_landing(conn, work / "base" / "landing", base_as_of.date(), settings)
    landing = work / "landing"
    lines = replicate(work / "base.duckdb", landing, args.copies)
    as_of = base_as_of.replace(year=base_as_of.year + args.copies - 1)
    print(f"landing zone: {lines:,} bank lines ({args.base_lines:,} generated x {args.copies} years) "
          f"in {time.perf_counter() - t0:.0f} s; as-of {as_of_text(as_of)}")

    settings_file = work / "bench-settings.yaml"
    settings_file.write_text(json.dumps({"spark": {"master": args.master, "driver_memory": args.driver_memory}}),
                             encoding="utf-8")
    results = {}
    for engine in args.engines.split(","):
        env = {**os.environ, "RECON_SETTINGS": str(settings_file)}
        command = [sys.executable, "-m", "recon_pipeline.cli", "run", "--landing", str(landing), "--warehouse",
                   str(work / engine / "recon.duckdb"), "--as-of", as_of.isoformat(), "--engine", engine]
        results[engine] = measure(command, env, args.cap_gib)
        r = results[engine]
        print(f"{engine:>6}: exit {r['exit']}, {r['seconds']} s wall, peak {r['peak_gib']} GiB (process tree); "
              f"{_stage_line(r['stdout'])} {' '.join(r['stderr']) if r['exit'] else ''}")
    if {"duckdb", "spark"} <= set(results) and results["duckdb"]["exit"] == 0 and results["spark"]["exit"] == 0:
        print(f"spark / duckdb: {results['spark']['seconds'] / results['duckdb']['seconds']:.2f}x wall, "
              f"{results['spark']['peak_gib'] / max(results['duckdb']['peak_gib'], 1e-9):.2f}x peak memory")
    print(f"load average after: {os.getloadavg()}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
