"""One writer at a time: a second run waits for the warehouse, then says who holds it (real processes)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from recon_pipeline.publish.publication import default_published_path
from recon_pipeline.warehouse import WarehouseBusyError, hold_warehouse, lock_path
from tests.test_cli import small_landing

RECON = [sys.executable, "-m", "recon_pipeline.cli"]
HOLD = """
import sys, time
from recon_pipeline.warehouse import hold_warehouse
with hold_warehouse(sys.argv[1], command="recon run --as-of 2025-03-05 (held by the test)"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def recon_run(landing: Path, warehouse: Path, *extra: str, background: bool = False):
    args = [*RECON, "run", "--landing", str(landing), "--warehouse", str(warehouse), "--as-of", "2025-03-05T09:00:00", *extra]
    if background:
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def wait_until_held(warehouse: Path, pid: int, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            holder = json.loads(lock_path(warehouse).read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            holder = {}
        if holder.get("pid") == pid:
            return holder
        time.sleep(0.1)
    raise AssertionError("the first process never took the warehouse lock")


def test_a_second_holder_waits_then_names_the_first(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(warehouse), "3"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(WarehouseBusyError) as busy:
            with hold_warehouse(warehouse, wait_seconds=0.5):
                pass
        assert time.monotonic() - started >= 0.5
        assert f"PID {holder.pid}" in str(busy.value) and "recon run --as-of 2025-03-05" in str(busy.value)
        # Waiting long enough, it gets the lock once the first process is done.
        with hold_warehouse(warehouse, wait_seconds=60):
            assert json.loads(lock_path(warehouse).read_text())["pid"] == os.getpid()
    finally:
        holder.wait(timeout=30)


def test_recon_run_exits_1_with_one_line_naming_the_holder(tmp_path):
    landing = small_landing(tmp_path)
    warehouse = tmp_path / "w.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(warehouse), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = recon_run(landing, warehouse, "--wait", "1")
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "内部错误" not in lines[0]
        assert f"PID {holder.pid}" in lines[0] and "recon run --as-of 2025-03-05" in lines[0]
        assert "\x1b" not in result.stderr
    finally:
        holder.kill()
        holder.wait()


def test_a_process_holding_duckdbs_own_lock_is_not_an_internal_error(tmp_path):
    landing = small_landing(tmp_path)
    warehouse = tmp_path / "w.duckdb"
    opener = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); print('open', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert opener.stdout.readline().strip() == "open"
        result = recon_run(landing, warehouse, "--wait", "0")
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "内部错误" not in lines[0] and f"PID {opener.pid}" in lines[0]
        assert "w.published.duckdb" in lines[0]  # what to open instead
    finally:
        opener.kill()
        opener.wait()


@pytest.mark.e2e
def test_two_recon_runs_one_waits_for_the_other_and_readers_never_block(tmp_path):
    landing = small_landing(tmp_path)
    warehouse = tmp_path / "w.duckdb"
    assert recon_run(landing, warehouse).returncode == 0  # a first publication to read
    # A full refresh: a rerun on the same inputs would otherwise skip the work and end at once.
    first = recon_run(landing, warehouse, "--full-refresh", background=True)
    try:
        holder = wait_until_held(warehouse, first.pid)
        assert "recon" in holder["command"] and "run" in holder["command"]
        # A reader of the published file is never blocked by the running writer.
        with duckdb.connect(str(default_published_path(warehouse)), read_only=True) as reader:
            assert reader.execute("SELECT count(*) FROM mart.fct_order_reconciliation").fetchone()[0] == 1
        impatient = recon_run(landing, warehouse, "--wait", "0")
        patient = recon_run(landing, warehouse, "--wait", "600")
    finally:
        out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert impatient.returncode == 1 and f"PID {first.pid}" in impatient.stderr
    assert len(impatient.stderr.strip().splitlines()) == 1
    assert patient.returncode == 0, patient.stderr
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM mart.fct_order_reconciliation").fetchone()[0] == 1


@pytest.mark.e2e
def test_recon_run_waits_for_a_dagster_run(tmp_path):
    from tests.orchestration.test_nightly_job import nightly_job_cli_process

    landing = small_landing(tmp_path)
    warehouse = tmp_path / "w.duckdb"
    job = nightly_job_cli_process(landing, warehouse, tmp_path / "dagster_home", "2025-03-05T09:00:00")
    try:
        holder = wait_until_held(warehouse, job.pid)
        assert holder["command"].startswith("Dagster 运行") and "nightly_reconciliation" in holder["command"]
        result = recon_run(landing, warehouse, "--wait", "1")
    finally:
        out, err = job.communicate(timeout=900)
    assert job.returncode == 0, err[-2000:]
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line and "Dagster 运行" in line and "nightly_reconciliation" in line and "内部错误" not in line


def test_a_nested_hold_in_the_same_thread_keeps_the_lock(tmp_path):
    # recon run holds the lock around run_stages (which holds it too) and its summary.
    warehouse = tmp_path / "w.duckdb"
    with hold_warehouse(warehouse, wait_seconds=0, command="outer"):
        with hold_warehouse(warehouse, wait_seconds=0, command="inner"):
            pass
        assert json.loads(lock_path(warehouse).read_text())["command"] == "outer"
        probe = subprocess.run(
            [sys.executable, "-c", "import sys; from recon_pipeline.warehouse import hold_warehouse\n"
             "with hold_warehouse(sys.argv[1], wait_seconds=0): pass", str(warehouse)],
            capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0 and "WarehouseBusyError" in probe.stderr


def test_commands_that_write_the_warehouse_wait_for_the_writer_lock_too(tmp_path):
    # recon publish / close-period / reopen-period / restore / rebuild write the warehouse: like
    # recon run, they wait for a running pipeline and then name it, instead of DuckDB's lock error.
    warehouse = tmp_path / "w.duckdb"
    (tmp_path / "backup").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(warehouse), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        env = {**os.environ, "RECON_LOCK_WAIT": "1"}
        for command in (["publish"], ["close-period", "2025-03"], ["reopen-period", "2025-03", "--reason", "x"],
                        ["restore", str(tmp_path / "backup"), "--force"]):
            result = subprocess.run([*RECON, *command, "--warehouse", str(warehouse)],
                                    capture_output=True, text=True, timeout=120, env=env)
            assert result.returncode == 1, (command, result.stderr)
            line = result.stderr.strip()
            assert "\n" not in line and f"PID {holder.pid}" in line and "内部错误" not in line, (command, line)
    finally:
        holder.kill()
        holder.wait()
