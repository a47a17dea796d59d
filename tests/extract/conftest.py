"""Fixtures for the extraction tests: the real servers (one PostgreSQL and one sshd per test
process, a fresh HTTP API per test), a landing zone and settings written from YAML."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from recon_pipeline.settings import load_settings
from tests.extract import servers

# The server tests share one process under xdist (--dist loadgroup): one PostgreSQL, one sshd.
SERVER_GROUP = pytest.mark.xdist_group("extract_servers")
_database_numbers = itertools.count(1)


def _serve(start):
    """Yield the started server, or skip with the reason it cannot run here."""
    try:
        with start() as server:
            yield server
    except servers.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def postgres():
    yield from _serve(servers.postgres_server)


@pytest.fixture()
def database(postgres):
    """A fresh database on the shared server: (name, url)."""
    name = f"erp_{next(_database_numbers)}"
    return name, postgres.create_database(name)


@pytest.fixture(scope="session")
def sftp():
    yield from _serve(servers.sftp_server)


@pytest.fixture()
def outbox(sftp):
    """The bank's remote directory, emptied for each test."""
    for path in sftp.outbox.iterdir():
        path.unlink()
    return sftp.outbox


@pytest.fixture()
def approvals():
    with servers.approval_api() as api:
        yield api


@pytest.fixture()
def landing(tmp_path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture()
def settings_from(tmp_path):
    """settings_from({...}) -> Settings merged over the packaged defaults, via a real YAML file."""
    counter = itertools.count(1)

    def build(data: dict):
        path = tmp_path / f"settings_{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return load_settings(path)

    return build


def landed(landing: Path) -> list[str]:
    """Every file ingest would see (the state folder `.extract` is not one of them)."""
    return sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(landing).parts))
