"""Crash at any moment: `recon run` killed with SIGKILL (whole process group) at every stage
boundary and inside every stage, then run again, gives exactly the warehouse of an uninterrupted
run; the published file is always a whole version; each alert mail reaches its recipient once.

The kill points are the crash points of `recon_pipeline.faults` (inside the ingest transaction,
after a dbt node, inside the matching and alert writes, before the publication is swapped in,
between a mail's acceptance and its log) plus kills from outside at seeded random moments.
"""

from __future__ import annotations

import email
import email.policy
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from aiosmtpd.controller import Controller

pytestmark = pytest.mark.e2e

RECON = Path(sys.executable).parent / "recon"
# Kill points in pipeline order, in chains: each chain starts from yesterday's warehouse, is
# killed at each point in turn (every point lies at or after the one before, so the run after a
# crash reaches it), then runs to the end and must equal the uninterrupted run.
CRASH_CHAINS = {
    "ingest": ["ingest:commit", "ingest:done"],
    "dbt_staging": ["dbt:before_matching#3", "dbt_staging:done"],
    "matching": ["matching:write", "matching:done"],
    "dbt_marts": ["dbt:after_matching#5", "dbt_marts:done", "close:done"],
    "alerts": ["alerts:write", "alerts:done"],
    "publish_notify": ["publish:replace", "publish:done", "notify:sent#2"],
}
RANDOM_KILLS = 3  # kills from outside at seeded random moments of the run, one after another


class Mailbox:
    """aiosmtpd handler: every accepted mail's Message-ID and recipients."""

    def __init__(self):
        self.received: list[tuple[str, tuple[str, ...]]] = []

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append((str(parsed["Message-ID"]), tuple(sorted(envelope.rcpt_tos))))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def smtp():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


def all_tables(path: Path) -> dict[str, list]:
    """Every row of every base table (all schemas), sorted."""
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = conn.execute("SELECT schema_name, table_name FROM duckdb_tables() "
                              "WHERE database_name = current_database() ORDER BY 1, 2").fetchall()
        return {f"{s}.{t}": sorted(conn.execute(f'SELECT * FROM "{s}"."{t}"').fetchall(), key=repr) for s, t in tables}


def published_version(path: Path) -> str:
    """The as-of of a published file, after checking it is whole (every table as recorded)."""
    with duckdb.connect(str(path), read_only=True) as conn:
        recorded = conn.execute("SELECT table_name, row_count, CAST(as_of AS VARCHAR) FROM meta.publication").fetchall()
        for table, rows, _ in recorded:
            assert conn.execute(f'SELECT count(*) FROM mart."{table}"').fetchone()[0] == rows
        (as_of,) = {row[2] for row in recorded}
        return as_of


def recon_run(landing: Path, warehouse: Path, as_of: str, smtp_port: int, crash: str | None = None,
              kill_after: float | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "RECON_SMTP_HOST": "127.0.0.1", "RECON_SMTP_PORT": str(smtp_port),
           "RECON_SMTP_TLS": "none", "RECON_SMTP_SENDER": "recon@example.com"}
    env.pop("RECON_CRASH_AT", None)
    if crash:
        env["RECON_CRASH_AT"] = crash
    args = [str(RECON), "run", "--landing", str(landing), "--warehouse", str(warehouse), "--as-of", as_of, "--notify"]
    child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    if kill_after is not None:
        try:
            child.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the whole group, as the OOM killer or a power cut would
    out, err = child.communicate(timeout=600)
    return subprocess.CompletedProcess(args, child.returncode, out, err)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, smtp):
    """Yesterday's warehouse (published) and what an uninterrupted run of today makes of it."""
    from recon_pipeline.demo.generator import generate_demo

    box, port = smtp
    root = tmp_path_factory.mktemp("crash")
    today = generate_demo(root, seed=7).as_of
    yesterday = (datetime.fromisoformat(str(today)) - timedelta(days=1)).isoformat()
    before = root / "before" / "recon.duckdb"
    done = recon_run(root / "landing", before, yesterday, port)
    assert done.returncode == 0, done.stderr
    box.received.clear()

    after = root / "after" / "recon.duckdb"
    shutil.copytree(before.parent, after.parent)
    started = time.perf_counter()
    done = recon_run(root / "landing", after, str(today), port)
    assert done.returncode == 0, done.stderr
    duration = time.perf_counter() - started
    mails = sorted(box.received)
    box.received.clear()
    assert mails, "the scenario must send mail, or the notification crash points test nothing"
    return {
        "landing": root / "landing", "before": before, "today": str(today),
        "yesterday_published": published_version(before.with_name("recon.published.duckdb")),
        "expected": all_tables(after), "published": published_version(after.with_name("recon.published.duckdb")),
        "mails": mails, "duration": duration,
    }


def crash_then_rerun(scenario, smtp, tmp_path, kills: list[dict]) -> None:
    box, port = smtp
    box.received.clear()
    work = tmp_path / "wh"
    shutil.copytree(scenario["before"].parent, work)
    warehouse, published = work / "recon.duckdb", work / "recon.published.duckdb"

    in_flight, must_resend = [], []  # per killed run, the last mail the server accepted during it
    for crash in kills:
        accepted_before = len(box.received)
        killed = recon_run(scenario["landing"], warehouse, scenario["today"], port, **crash)
        # A crash point must be reached; a kill from outside may come after a fast run finished.
        allowed = (-signal.SIGKILL,) if "crash" in crash else (-signal.SIGKILL, 0)
        assert killed.returncode in allowed, f"{crash}: not killed ({killed.returncode}): {killed.stderr[-500:]}"
        if killed.returncode == -signal.SIGKILL and len(box.received) > accepted_before:
            in_flight.append(box.received[-1])
            if crash.get("crash", "").startswith("notify:sent"):
                must_resend.append(box.received[-1])  # killed inside the window itself
        # Readers only ever see a whole publication: yesterday's, or today's.
        assert published_version(published) in (scenario["yesterday_published"], scenario["published"])

    rerun = recon_run(scenario["landing"], warehouse, scenario["today"], port)
    assert rerun.returncode == 0, rerun.stderr
    assert all_tables(warehouse) == scenario["expected"]
    assert published_version(published) == scenario["published"]

    # Each mail reaches its recipients once. Only a kill between the server's acceptance and our
    # log can resend one: the last mail accepted during a killed run, once, with the same
    # Message-ID (recognisably the same mail). A kill from outside may or may not fall there.
    received = sorted(box.received)
    assert sorted(set(received)) == scenario["mails"]
    resent = Counter(received) - Counter(set(received))
    assert not resent - Counter(in_flight), f"resent without a kill in its window: {resent - Counter(in_flight)}"
    assert not Counter(must_resend) - resent, "a mail accepted but not logged before the kill was not resent"
    assert sum(1 for c in kills if c.get("crash", "").startswith("notify:sent")) == len(must_resend)


@pytest.mark.parametrize("chain", CRASH_CHAINS)
def test_killed_at_each_crash_point_then_rerun_gives_the_uninterrupted_warehouse(scenario, smtp, tmp_path, chain):
    crash_then_rerun(scenario, smtp, tmp_path, [{"crash": point} for point in CRASH_CHAINS[chain]])


def test_killed_at_random_moments_then_rerun_gives_the_uninterrupted_warehouse(scenario, smtp, tmp_path):
    rng = random.Random(20261201)
    moments = [rng.uniform(0.1, 0.9) * scenario["duration"] for _ in range(RANDOM_KILLS)]
    crash_then_rerun(scenario, smtp, tmp_path, [{"kill_after": moment} for moment in moments])
