"""The Spark engine against the DuckDB engine, per size: wall time and peak memory side by side.

    python bench/bench_spark.py --sizes 10000,100000                 # demo data generated per size
    python bench/bench_spark.py --data /tmp/inc-data-1m              # a `recon demo` output, reused
    python bench/bench_spark.py --base-lines 1000000 --copies 10     # 10M bank lines, replicated

For each size both engines run the same full `recon run` (a fresh warehouse, the demo's as-of) in
a child process of their own: `--engine duckdb`, then `--engine spark` with master `local[2]`
(`--master`). What is measured for each: wall time, the peak resident memory (RSS) of the child's
whole process tree (the JVM and Spark's Python workers included), sampled from /proc every 100 ms
as bench/bench_pipeline.py does, the CPU seconds of that tree (user + system, sampled the same
way: what the run cost, whatever else the shared machine was doing), and each stage's time.
Nothing is capped: the JVM reserves far more address space than it touches, so an address-space
limit measures nothing useful (and killed the DuckDB engine at 6 GiB). `--timeout` stops a leg
that runs too long and reports the stage it reached and the stages it finished.

Generating 10M lines with the Python demo generator would take ~40 GB, so that size is built
another way (`--copies`): the demo generator writes a base landing zone (`--base-lines`), the
DuckDB engine ingests it (typed raw history), and DuckDB SQL replicates it `--copies` times as
later years of the same company: every date moved by k years, order IDs `25SH00137` ->
`26SH00137` (in the memos too, mangled forms included), invoice / write-off / archive / feedback /
transaction IDs suffixed `-Yk`; customers and salespeople are the same. Each copy is written as
Parquet drops (canonical columns) under its shifted drop dates, the as-of moves by `copies - 1`
years. Rows the base quarantined are not replicated.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import _rss_kib, tree_pids  # noqa: E402
from recon_pipeline.as_of import parse_as_of  # noqa: E402
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


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process (its own, not its children's)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def child_run(landing: str, warehouse: str, as_of: str, engine: str) -> None:
    """One full run in this (fresh) process, as `recon run --engine` does it; a line per stage
    started (flushed: the parent knows the stage reached if it has to stop the run)."""
    from recon_pipeline.pipeline import RunContext, RunOptions, run_stages
    from recon_pipeline.settings import load_settings
    from recon_pipeline.spark_session import stop_spark_session

    started = time.perf_counter()
    settings = load_settings()

    def progress(stage: str) -> None:
        print(f"STAGE {stage} {time.perf_counter() - started:.2f}", flush=True)

    run = RunContext(landing_dir=Path(landing), warehouse=Path(warehouse), as_of=parse_as_of(as_of, settings.timezone),
                     settings=settings, options=RunOptions(engine=engine), echo=lambda line: None)
    try:
        result = run_stages(run, progress)
    finally:
        stop_spark_session()
    print(f"STAGE done {time.perf_counter() - started:.2f}", flush=True)
    print("RESULT " + json.dumps({"stages": result.stage_seconds, "links": result.link_counts}), flush=True)


def measure(landing: Path, warehouse: Path, as_of: str, engine: str, env: dict, timeout: float) -> dict:
    """Run one leg in a child process; wall, peak tree RSS, tree CPU seconds, stages."""
    command = [sys.executable, __file__, "--child", str(landing), str(warehouse), as_of, engine]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    peak, cpu, marks, result, errors = [0], {}, [], {}, []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            total = 0
            for pid in tree_pids(process.pid):
                total += _rss_kib(pid)
                seconds = _cpu_seconds(pid)
                if seconds is not None:
                    cpu[pid] = max(cpu.get(pid, 0.0), seconds)
            peak[0] = max(peak[0], total)
            time.sleep(0.1)

    def read_stdout() -> None:
        for line in process.stdout:
            if line.startswith("STAGE "):
                _, stage, at = line.split()
                marks.append((stage, float(at)))
            elif line.startswith("RESULT "):
                result.update(json.loads(line.removeprefix("RESULT ")))

    def read_stderr() -> None:
        errors.extend(line.rstrip() for line in process.stderr)

    threads = [threading.Thread(target=f, daemon=True) for f in (sample, read_stdout, read_stderr)]
    for thread in threads:
        thread.start()
    timed_out = False
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)  # the child's session: its JVM and Python workers too
        process.wait()
    done.set()
    for thread in threads:
        thread.join(timeout=10)
    seconds = time.perf_counter() - started
    # Stage times: from the result when the run finished, else from the stage marks it printed.
    stages = result.get("stages") or {name: round(marks[i + 1][1] - at, 1)
                                      for i, (name, at) in enumerate(marks[:-1]) if name != "done"}
    reached = marks[-1][0] if marks and marks[-1][0] != "done" else None
    return {"seconds": round(seconds, 1), "peak_gib": round(peak[0] / 1024 ** 2, 2),
            "cpu_seconds": round(sum(cpu.values()), 1), "exit": process.returncode, "timed_out": timed_out,
            "stages": stages, "reached": reached if (timed_out or process.returncode) else None,
            "reached_after": round(seconds - marks[-1][1], 1) if marks and reached else None,
            "error": next((line for line in reversed(errors) if line.strip()), "")}


def _stages(figure: dict) -> str:
    text = ", ".join(f"{k} {v:.1f}s" for k, v in figure["stages"].items())
    if figure["reached"]:
        how = f"stopped after {figure['seconds']:.0f} s (--timeout)" if figure["timed_out"] else f"failed ({figure['error'][:200]})"
        text += f"; {how} in stage {figure['reached']}, {figure['reached_after']:.0f} s into it"
    return text


def _bank_lines(warehouse: Path) -> int | None:
    """Bank lines the run loaded (the DuckDB leg's raw history): the size of a reused landing zone."""
    try:
        conn = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return None
    try:
        return conn.execute("SELECT count(*) FROM raw.bank_transactions").fetchone()[0]
    except duckdb.Error:
        return None
    finally:
        conn.close()


def prepare(args, size: int | None, data: Path | None, work: Path, settings) -> tuple[Path, int | None, str]:
    """(landing zone, bank lines if known before the runs, as-of) for one size: reused, generated,
    or replicated."""
    base_as_of = parse_as_of(DEMO_AS_OF, settings.timezone)
    if data is not None and args.copies == 1:
        return data / "landing", None, base_as_of.isoformat()
    base = data or work / f"base-{size}"
    if not (base / "landing").is_dir():
        subprocess.run([sys.executable, "-m", "recon_pipeline.cli", "demo", "--out", str(base), "--seed", "11",
                        "--bank-lines", str(size)], check=True, stdout=subprocess.DEVNULL)
    if args.copies == 1:
        return base / "landing", size, base_as_of.isoformat()
    with connect(work / f"base-{size}.duckdb") as conn:
        sync_landing(conn, base / "landing", base_as_of.date(), settings)
    landing = work / f"landing-{size}x{args.copies}"
    lines = replicate(work / f"base-{size}.duckdb", landing, args.copies)
    return landing, lines, base_as_of.replace(year=base_as_of.year + args.copies - 1).isoformat()


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_run(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000", help="comma-separated bank line counts (demo data generated)")
    parser.add_argument("--data", type=Path, help="a `recon demo --out` folder to reuse (one size)")
    parser.add_argument("--base-lines", type=int, help="with --copies: the generated base of a replicated size")
    parser.add_argument("--copies", type=int, default=1, help="replicate the base this many years (10M: 10)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="3g")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per leg before it is stopped")
    parser.add_argument("--work", type=Path, default=None, help="keep warehouses and generated data here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="recon-bench-spark-"))
    work.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    settings_file = work / "bench-settings.yaml"
    settings_file.write_text(json.dumps({"spark": {"master": args.master, "driver_memory": args.driver_memory}}),
                             encoding="utf-8")
    env = {**os.environ, "RECON_SETTINGS": str(settings_file)}
    sizes = [None] if args.data else [args.base_lines] if args.base_lines else [int(s) for s in args.sizes.split(",")]
    rows = []
    try:
        for size in sizes:
            t0 = time.perf_counter()
            landing, lines, as_of = prepare(args, size, args.data, work, settings)
            shown = f"{lines:,}" if lines else str(args.data)
            print(f"\n== {shown} bank lines, as-of {as_of} (landing ready in {time.perf_counter() - t0:.0f} s); "
                  f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
            figures = {}
            for engine in args.engines.split(","):
                warehouse = work / f"{lines or 'data'}-{engine}" / "recon.duckdb"
                shutil.rmtree(warehouse.parent, ignore_errors=True)
                figures[engine] = f = measure(landing, warehouse, as_of, engine, env, args.timeout)
                label = f"{engine} ({args.master})" if engine == "spark" else engine
                print(f"  {label:>16}: exit {f['exit']}, {f['seconds']:.1f} s wall, {f['cpu_seconds']:.0f} CPU-s, "
                      f"peak {f['peak_gib']:.2f} GiB RSS (process tree); {_stages(f)}; "
                      f"load average {os.getloadavg()[0]:.1f}", flush=True)
                if lines is None and engine == "duckdb":
                    lines = _bank_lines(warehouse)
                    print(f"  ({lines:,} bank lines loaded)" if lines else "", flush=True)
            rows.append((lines or 0, figures))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'bank lines':>12} | {'duckdb wall':>11} {'peak':>9} | {'spark wall':>11} {'peak':>9} | "
          f"{'spark/duckdb wall':>17} {'memory':>7}")
    for lines, f in rows:
        duck, spark = f.get("duckdb"), f.get("spark")
        cells = [f"{lines:>12,}"]
        for leg in (duck, spark):
            if leg is None:
                cells.append(f"{'-':>11} {'-':>9}")
            else:
                mark = "" if leg["exit"] == 0 else "!"
                cells.append(f"{leg['seconds']:>10.1f}s{mark or ' '}{leg['peak_gib']:>6.2f} GiB")
        complete = duck and spark and duck["exit"] == 0 and spark["exit"] == 0
        ratios = (f"{_ratio(spark['seconds'], duck['seconds']):>17} {_ratio(spark['peak_gib'], duck['peak_gib']):>7}"
                  if complete else f"{'(a leg did not finish: !)':>25}")
        print(" | ".join([*cells, ratios]))
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
