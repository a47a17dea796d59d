"""Fixtures shared across test modules."""

import pytest

from alert_fixtures import FixtureWarehouse, standard_people
from recon_pipeline.settings import load_settings


@pytest.fixture()
def settings():
    """The packaged default settings."""
    return load_settings()


@pytest.fixture()
def wh(tmp_path):
    """A fixture warehouse (contract columns) with the standard salespeople and managers."""
    warehouse = FixtureWarehouse(tmp_path / "warehouse.duckdb")
    standard_people(warehouse)
    yield warehouse
    warehouse.close()
