"""A plain (non-editable) `pip install` of the project runs the nightly job from the README's command line.

No `make`, no `dbt parse`, no checkout on the path: the dbt project ships inside the package and
the code location prepares its manifest. The wheel's dependencies come from this test run's
environment (a .pth file), so the test needs no index.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import duckdb
import pytest

from tests import REPO_ROOT
from tests.test_cli import small_landing

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    # Build from a copy of the sources: setuptools builds in the tree it is given (build/).
    source = root / "source"
    generated = shutil.ignore_patterns("target", "logs", "__pycache__", "*.egg-info", "*.duckdb*", "build")
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    for folder in ("recon_pipeline", "dbt_project"):
        shutil.copytree(REPO_ROOT / folder, source / folder, ignore=generated)
    wheels = root / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(source)],
        capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = wheels.glob("recon_pipeline-*.whl")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    return python


def run_installed(python: Path, cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "RECON_DBT_PROJECT_DIR")}
    # dbt's own script lives beside the dependencies' interpreter, as it would in a real install.
    environment["PATH"] = str(Path(sys.executable).parent) + os.pathsep + environment.get("PATH", "")
    return subprocess.run([str(python), *args], cwd=cwd, env={**environment, **(env or {})},
                          capture_output=True, text=True, timeout=900)


def test_the_package_ships_the_dbt_project_without_a_manifest(installed, tmp_path):
    shown = run_installed(installed, tmp_path, "-c", "from recon_pipeline.settings import DBT_PROJECT_DIR as d; print(d)")
    project = Path(shown.stdout.strip())
    assert "site-packages" in str(project) and not str(project).startswith(str(REPO_ROOT))
    assert (project / "dbt_project.yml").is_file() and (project / "models" / "marts").is_dir()
    assert (project / "selectors.yml").is_file() and (project / "profiles.yml").is_file()


def test_nightly_job_runs_from_the_readme_command_line_on_a_fresh_install(installed, tmp_path):
    landing = small_landing(tmp_path)
    warehouse = tmp_path / "w.duckdb"
    (tmp_path / "home").mkdir()
    result = run_installed(
        installed, tmp_path, "-m", "dagster", "job", "execute", "-m", "recon_pipeline.definitions",
        "-j", "nightly_reconciliation", "--tags", json.dumps({"recon/as_of": "2025-03-05T09:00:00"}),
        env={"RECON_LANDING_DIR": str(landing), "RECON_WAREHOUSE": str(warehouse), "DAGSTER_HOME": str(tmp_path / "home")},
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    with duckdb.connect(str(tmp_path / "w.published.duckdb"), read_only=True) as conn:
        row = conn.execute("SELECT order_id, allocated_amount FROM mart.fct_receipt_matches WHERE txn_id = 'T1'").fetchone()
        assert row[0] == "25SH00007" and str(row[1]) == "500.00"
        assert str(conn.execute("SELECT max(as_of) FROM meta.publication").fetchone()[0]) == "2025-03-05 09:00:00"
