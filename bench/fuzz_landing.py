"""The landing-zone fuzz campaign for a time budget (issue #16): random landing zones of good
and malformed rows in every source and file type (tests/ingest/landing_fuzz.py), each loaded
by the ingestion stage; prints cases tried, rows, crashes, rows lost and unexpected outcomes.
Seeded: the same --seed gives the same cases.

    .venv/bin/python bench/fuzz_landing.py [--seconds 120] [--seed 20250301]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon_pipeline.ingest.loader import sync_landing  # noqa: E402
from recon_pipeline.settings import load_settings  # noqa: E402
import duckdb  # noqa: E402
from tests.ingest.landing_fuzz import account, build_case, write_case  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--seed", type=int, default=20250301)
    args = parser.parse_args()
    settings = load_settings()
    seeds = random.Random(args.seed)
    deadline = time.monotonic() + args.seconds
    cases = rows = bad_rows = crashes = lost = 0
    kinds: Counter[str] = Counter()
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        while time.monotonic() < deadline:
            case_seed = seeds.randrange(2**31)
            case = build_case(case_seed)
            work = Path(tmp) / f"c{cases}"
            write_case(case, work / "landing")
            cases += 1
            rows += case.rows
            bad_rows += sum(f.bad for d in case.drops for f in d.files)
            kinds.update(f.kind for d in case.drops for f in d.files)
            try:
                with duckdb.connect() as conn:  # in memory: the same SQL, no file per case
                    report = sync_landing(conn, work / "landing", date(2025, 3, 31), settings)
                    outcome = account(case, conn, report)
            except Exception:  # a crash is what the campaign looks for
                crashes += 1
                problems.append(f"seed {case_seed}: crash\n{traceback.format_exc()}")
                continue
            lost += outcome.rows_lost
            problems += [f"seed {case_seed}: {p}" for p in outcome.unexpected]
    print(f"cases tried: {cases}  rows: {rows} (bad: {bad_rows})  crashes: {crashes}  rows lost: {lost}  "
          f"unexpected outcomes: {len(problems)}")
    print("files by type: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    for problem in problems[:20]:
        print(problem)
    return 1 if crashes or lost or problems else 0


if __name__ == "__main__":
    sys.exit(main())
