"""`dagster dev` on workspace.yaml serves the asset graph (what a data engineer opens first)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests import REPO_ROOT

ROOT = REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, text: str, timeout: float = 10):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": text}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)["data"]


@pytest.mark.e2e
def test_dagster_dev_serves_the_asset_graph_with_the_runs_made_before(tmp_path):
    # What `make demo` then `make ui` does: a nightly run into a persistent instance, then the UI.
    from tests.orchestration.test_nightly_job import nightly_job_cli
    from tests.test_cli import small_landing

    landing, warehouse, home = small_landing(tmp_path), tmp_path / "w.duckdb", tmp_path / "home"
    job = nightly_job_cli(landing, warehouse, home, "2025-03-05T09:00:00")
    assert job.returncode == 0, job.stderr[-2000:]
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "RECON_WAREHOUSE": str(warehouse), "RECON_LANDING_DIR": str(landing)}
    dagster = Path(sys.executable).parent / "dagster"
    process = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
        deadline, keys = time.time() + 120, None
        while time.time() < deadline and keys is None:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query,
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    nodes = json.load(response)["data"]["assetNodes"]
                    keys = {"/".join(n["assetKey"]["path"]) for n in nodes} if nodes else None
            except (OSError, KeyError, TypeError, ValueError):
                time.sleep(1)
        assert keys, "dagster dev did not serve the asset graph within 120 s"
        assert {"raw/bank_transactions", "matching/receipt_links", "mart/fct_order_reconciliation", "mart/alerts",
                "mart/health_metrics"} <= keys
        query = json.dumps({"query": "{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError {"
                                     " ... on RepositoryLocation { repositories { schedules { name } sensors { name } } } } } } } }"}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            repositories = json.load(response)["data"]["workspaceOrError"]["locationEntries"][0]["locationOrLoadError"]["repositories"]
        schedules = {s["name"] for r in repositories for s in r["schedules"]}
        sensors = {s["name"] for r in repositories for s in r["sensors"]}
        assert {"nightly_reconciliation_schedule", "diff_list_schedule", "health_refresh_schedule"} <= schedules
        assert {"landing_drop_sensor", "run_failure_notification"} <= sensors
        # The run made before the UI started, its materializations, and partitions spanning the data.
        runs = graphql(port, "{ runsOrError { ... on Runs { results { jobName status tags { key value } } } } }")
        [run] = runs["runsOrError"]["results"]
        assert run["jobName"] == "nightly_reconciliation" and run["status"] == "SUCCESS"
        assert {"key": "recon/as_of", "value": "2025-03-05T09:00:00"} in run["tags"]
        published = graphql(port, '{ assetNodeOrError(assetKey: {path: ["publish", "published_mart"]}) {'
                                  ' ... on AssetNode { assetMaterializations(limit: 1) { runId } } } }')
        assert published["assetNodeOrError"]["assetMaterializations"]
        raw = graphql(port, '{ assetNodeOrError(assetKey: {path: ["raw", "bank_transactions"]}) {'
                            ' ... on AssetNode { partitionKeys } } }')
        assert raw["assetNodeOrError"]["partitionKeys"] == ["2025-03-03", "2025-03-04", "2025-03-05"]
    finally:
        # dagster dev's children may outlive a SIGTERM to the parent: stop the whole group.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
