"""Ships the dbt project inside the package (recon_pipeline/dbt_project) for a plain `pip install`.

In the repository the dbt project is the sibling folder `dbt_project/` (where dbt users expect
it); a wheel copies it in, without dbt's target/, logs/ or packages. Editable installs keep
using the sibling folder (recon_pipeline.settings.DBT_PROJECT_DIR finds either). Everything else
is declared in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DBT_PROJECT = Path(__file__).parent / "dbt_project"
NOT_SHIPPED = shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb", "*.duckdb.wal", "__pycache__")


class BuildPyWithDbtProject(build_py):
    def run(self):
        super().run()
        if not self.editable_mode:
            destination = Path(self.build_lib) / "recon_pipeline" / "dbt_project"
            shutil.rmtree(destination, ignore_errors=True)
            shutil.copytree(DBT_PROJECT, destination, ignore=NOT_SHIPPED)


setup(cmdclass={"build_py": BuildPyWithDbtProject})
