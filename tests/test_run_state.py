"""What counts as the code version of a run (part of its inputs: a new version is a full run)."""

from __future__ import annotations

from recon_pipeline import run_state


def test_the_code_version_ignores_what_tools_leave_beside_the_code(tmp_path, monkeypatch):
    package, project = tmp_path / "recon_pipeline", tmp_path / "dbt_project"
    (project / "models").mkdir(parents=True)
    package.mkdir()
    (package / "stages.py").write_text("STAGES = 1\n")
    (project / "models" / "orders.sql").write_text("select 1 as order_id\n")

    def version() -> str:
        run_state.code_fingerprint.cache_clear()
        return run_state.code_fingerprint()

    with monkeypatch.context() as patch:
        patch.setattr(run_state, "_PACKAGE_DIR", package)
        patch.setattr(run_state, "DBT_PROJECT_DIR", str(project))
        before = version()
        # dbt's anonymous id, its output folders, Python's caches: not the code.
        (project / ".user.yml").write_text("id: 5791d7be\n")
        for folder in (project / "target", project / "logs", package / "__pycache__"):
            folder.mkdir()
            (folder / "leftover.json").write_text("{}\n")
        assert version() == before
        (project / "models" / "orders.sql").write_text("select 2 as order_id\n")  # an analyst's edit
        edited = version()
        assert edited != before
        (package / "stages.py").write_text("STAGES = 2\n")
        assert version() not in (before, edited)
    run_state.code_fingerprint.cache_clear()
