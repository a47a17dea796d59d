"""End-to-end benchmark of `recon run`: wall time and peak memory per stage.

    python bench/bench_pipeline.py --bank-lines 100000
    python bench/bench_pipeline.py --bank-lines 1000000

Generates the demo landing zone scaled to N bank lines (other sources in proportion), runs the
pipeline in-process and samples the resident memory of this process plus its children (dbt)
every 50 ms. The baseline, measured in the same run, is DuckDB alone reading the same bank CSV
files (the floor for "read the drops"), so the ingest ratio shows what typing, validation and
provenance cost on top of that.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon_pipeline.as_of import parse_as_of  # noqa: E402
from recon_pipeline.demo.clock import AS_OF as DEMO_AS_OF  # noqa: E402
from recon_pipeline.pipeline import run_pipeline  # noqa: E402
from recon_pipeline.settings import load_settings  # noqa: E402


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _tree_rss_kib(root: int) -> int:
    """RSS of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _rss_kib(pid)
        stack.extend(children.get(pid, []))
    return total


class MemorySampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.stage = "setup"
        self.peaks: dict[str, int] = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            rss = _tree_rss_kib(os.getpid())
            self.peaks[self.stage] = max(self.peaks.get(self.stage, 0), rss)
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bank-lines", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="recon-bench-"))
    settings = load_settings()
    sampler = MemorySampler()
    sampler.start()
    try:
        started = time.perf_counter()
        sampler.stage = "generate"
        # In a child process: the generator's memory must not count as the pipeline's.
        subprocess.run(
            [sys.executable, "-m", "recon_pipeline.cli", "demo", "--out", str(work / "data"), "--seed", "11",
             "--bank-lines", str(args.bank_lines)],
            check=True, stdout=subprocess.DEVNULL,
        )
        generate_seconds = time.perf_counter() - started
        landing = work / "data" / "landing"

        sampler.stage = "baseline"
        t0 = time.perf_counter()
        with duckdb.connect() as conn:
            csvs = [str(p) for p in (landing / "bank_transactions").rglob("*.csv")]
            baseline_rows = 0
            for path in csvs:
                try:
                    baseline_rows += conn.execute(
                        "SELECT count(*) FROM read_csv(?, all_varchar=true, header=true)", [path]
                    ).fetchone()[0]
                except duckdb.Error:
                    pass  # GB18030 files: DuckDB alone cannot read them
        baseline_seconds = time.perf_counter() - t0

        def progress(stage: str) -> None:
            sampler.stage = stage

        t0 = time.perf_counter()
        result = run_pipeline(landing, work / "recon.duckdb", parse_as_of(DEMO_AS_OF, settings.timezone), settings, progress)
        total = time.perf_counter() - t0
        sampler.stage = "done"
    finally:
        sampler.stop.set()
        sampler.join()
    gib = 1024 * 1024
    print(f"bank lines: {args.bank_lines:,}  (generated in {generate_seconds:.1f}s)")
    print(f"{'stage':<14}{'seconds':>10}{'peak RSS MiB':>15}")
    for stage, seconds in result.stage_seconds.items():
        print(f"{stage:<14}{seconds:>10.1f}{sampler.peaks.get(stage, 0) / 1024:>15.0f}")
    peak = max(v for k, v in sampler.peaks.items() if k in result.stage_seconds)
    print(f"{'total':<14}{total:>10.1f}{peak / 1024:>15.0f}")
    print(f"baseline: DuckDB read_csv of the bank drops ({baseline_rows:,} rows) {baseline_seconds:.1f}s; "
          f"ingest / baseline = {result.stage_seconds['ingest'] / max(baseline_seconds, 1e-6):.1f}x")
    print(f"targets: 1M lines < 180 s and < 4 GiB  ->  {total:.0f} s, {peak / gib:.2f} GiB")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept: {work}")


if __name__ == "__main__":
    main()
