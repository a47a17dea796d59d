"""The landing-zone fuzz campaign (issue #16): random landing zones of good and malformed rows
in every source and file type (see landing_fuzz). Ingestion never crashes, every bad row is
in raw.quarantine with its reason and every good row in raw history. Seeded and bounded:
`bench/fuzz_landing.py --seconds N` runs the same campaign for longer and prints the figures."""

from __future__ import annotations

from datetime import date

import duckdb
from hypothesis import HealthCheck, given, seed, settings

from recon_pipeline.ingest.loader import sync_landing
from recon_pipeline.settings import load_settings
from tests.ingest.landing_fuzz import account, build_case, landing_seeds, write_case

SETTINGS = load_settings()


def run_case(case_seed: int, workdir) -> object:
    case = build_case(case_seed)
    landing = workdir / f"case{case_seed}" / "landing"
    write_case(case, landing)
    with duckdb.connect() as conn:  # an in-memory warehouse: the same SQL, no file to create per case
        report = sync_landing(conn, landing, date(2025, 3, 31), SETTINGS)
        return account(case, conn, report)


@seed(20250301)
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case_seed=landing_seeds)
def test_ingestion_accounts_for_every_row_of_a_random_landing_zone(tmp_path, case_seed):
    outcome = run_case(case_seed, tmp_path)
    assert outcome.rows_lost == 0 and outcome.unexpected == [], (case_seed, outcome.unexpected)


def test_the_accounting_notices_a_lost_or_unquarantined_row(tmp_path):
    """The campaign's check can fail: a row deleted from raw history, or from the quarantine,
    is counted as lost."""
    case_seed = next(s for s in range(1000) if any(
        f.good_keys and f.bad for d in build_case(s).drops if not d.broken for f in d.files))
    case = build_case(case_seed)
    write_case(case, tmp_path / "landing")
    with duckdb.connect() as conn:
        report = sync_landing(conn, tmp_path / "landing", date(2025, 3, 31), SETTINGS)
        assert account(case, conn, report).rows_lost == 0
        drop = next(d for d in case.drops if not d.broken and any(f.good_keys and f.bad for f in d.files))
        file = next(f for f in drop.files if f.good_keys and f.bad)
        source_file = f"{drop.source}/{drop.day}/{file.name}"
        conn.execute(f"DELETE FROM raw.{drop.source} WHERE rowid IN (SELECT min(rowid) FROM raw.{drop.source} "
                     "WHERE _source_file = ?)", [source_file])
        conn.execute("DELETE FROM raw.quarantine WHERE rowid IN (SELECT min(rowid) FROM raw.quarantine WHERE _source_file = ?)",
                     [source_file])
        outcome = account(case, conn, report)
    assert outcome.rows_lost == 2 and source_file in outcome.unexpected[0]
