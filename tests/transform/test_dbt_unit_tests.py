"""dbt unit tests never depend on the run's vars: each pins every var the pipeline passes.

Regression: `stg_finance_writeoffs_latest_drop_wins_without_updated_at` took the run's `as_of`, so
`recon run --as-of 2025-02-28T16:00:00` failed the whole run (its fixture drops were "in the future").
"""

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from recon_pipeline.settings import DBT_PROJECT_DIR, load_settings
from recon_pipeline.transform.dbt_runner import dbt_vars, run_dbt
from recon_pipeline.warehouse import connect, ensure_schema

RUN_VARS = sorted(dbt_vars(load_settings(), datetime(2025, 1, 1)))


def unit_tests():
    for path in sorted(Path(DBT_PROJECT_DIR, "models").rglob("*.yml")):
        for test in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("unit_tests") or []:
            yield path.relative_to(DBT_PROJECT_DIR), test


def test_every_unit_test_pins_every_run_var():
    tests = list(unit_tests())
    assert tests
    unpinned = {
        f"{path}: {test['name']}": sorted(set(RUN_VARS) - set(((test.get("overrides") or {}).get("vars") or {})))
        for path, test in tests
    }
    unpinned = {name: missing for name, missing in unpinned.items() if missing}
    assert not unpinned, f"pin these vars under overrides: vars: in the unit test itself: {unpinned}"


@pytest.mark.e2e
def test_unit_tests_pass_whatever_the_run_vars(tmp_path):
    # Run vars no real run would use: an as-of before any fixture row, other rule settings.
    user_settings = tmp_path / "settings.yaml"
    user_settings.write_text(
        "cutoff_hour: 3\namount_tolerance: 50\ntimezone: UTC\nalerts:\n  discrepancy_rate_threshold: 0.9\n",
        encoding="utf-8")
    settings = load_settings(user_settings)
    warehouse = tmp_path / "w.duckdb"
    with connect(warehouse) as conn:
        ensure_schema(conn)
    early = datetime(1990, 1, 1)
    assert run_dbt(["run", "--empty"], warehouse, settings, early).ok  # unit tests need the relations
    outcome = run_dbt(["test", "--select", "test_type:unit"], warehouse, settings, early)
    assert outcome.ok, outcome.failures
    assert outcome.counts.get("pass", 0) == len(list(unit_tests()))
