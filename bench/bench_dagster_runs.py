"""Benchmark of the Dagster door on the demo: what a run with nothing new costs, next to a full run.

    python bench/bench_dagster_runs.py              # the demo (seed 7), as `make demo` runs it
    python bench/bench_dagster_runs.py --keep DIR   # keep the demo, warehouse and instance in DIR

Each run is the README's command line (`dagster job execute -m recon_pipeline.definitions -j
nightly_reconciliation --tags '{"recon/as_of": ...}'`) in a fresh process, measured by its wall
seconds and the CPU seconds of it and its children (dbt). Figures, in order:

1. full run: a new warehouse at the demo's as-of (the baseline for the others);
2. no-change rerun: the same inputs and as-of again (a schedule retried, `make demo` twice);
3. working-hours tick: the as-of ten minutes later, no new drop (the 10-minute schedule);
4. the same tick again (its inputs equal the last publication's).

`uptime` is printed too: the machine is shared, the load says how much to trust the seconds.
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
import time
from pathlib import Path

BIN = Path(sys.executable).parent
AS_OF = "2025-05-06T09:00:00"
TICK_AS_OF = "2025-05-06T09:10:00"


def dagster_run(landing: Path, warehouse: Path, home: Path, as_of: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the run's process tree) of one nightly_reconciliation run."""
    env = {**os.environ, "RECON_LANDING_DIR": str(landing), "RECON_WAREHOUSE": str(warehouse),
           "DAGSTER_HOME": str(home)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "dagster"), "job", "execute", "-m", "recon_pipeline.definitions", "-j", "nightly_reconciliation",
         "--tags", json.dumps({"recon/as_of": as_of})], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"run at {as_of} failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-dagster-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-c", "from recon_pipeline.demo.generator import generate_demo; import sys; "
                        "generate_demo(sys.argv[1], seed=7)", str(work / "demo")], check=True)
        landing, warehouse, home = work / "demo" / "landing", work / "warehouse" / "recon.duckdb", work / "home"
        home.mkdir(exist_ok=True)
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        figures = [
            ("full run (baseline)", AS_OF),
            ("no-change rerun, same as-of", AS_OF),
            ("working-hours tick, as-of +10 min, no new drop", TICK_AS_OF),
            ("the same tick again", TICK_AS_OF),
        ]
        measured = []
        for name, as_of in figures:
            wall, cpu = dagster_run(landing, warehouse, home, as_of)
            measured.append((name, wall, cpu))
        base_wall, base_cpu = measured[0][1], measured[0][2]
        print(f"{'Dagster nightly_reconciliation on the demo':<50} {'wall s':>8} {'CPU s':>8} {'vs full':>8}")
        for name, wall, cpu in measured:
            print(f"{name:<50} {wall:8.1f} {cpu:8.1f} {wall / base_wall:7.0%}")
        print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
