"""`kind: sftp` against a real OpenSSH server: files fetched as they came, once, and the bad cases."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from contextlib import contextmanager
from datetime import datetime

import pytest

from recon_pipeline.extract.stage import extract_sources
from tests.extract import servers
from tests.extract.conftest import SERVER_GROUP, landed

pytestmark = SERVER_GROUP

AS_OF = datetime(2025, 5, 6, 0, 30)
STATEMENT = "账号,流水号,交易时间,金额,对方户名,附言\n6222001,T1,2025-05-05 10:00:00,\"1,234.50\",上海星辰制造有限公司,货款\n"


def put(outbox, name: str, data: bytes, mtime: float = 1_746_403_200) -> None:
    (outbox / name).write_bytes(data)
    os.utime(outbox / name, (mtime, mtime))


@pytest.fixture()
def bank(sftp, outbox, settings_from, monkeypatch):
    """The issue's settings form, pointed at the test server (its user and outbox)."""
    monkeypatch.setenv("RECON_BANK_SFTP_KEY", str(sftp.key_file))

    def settings(**overrides):
        entry = {"kind": "sftp", "host": "127.0.0.1", "port": sftp.port, "user": sftp.user,
                 "key_file_env": "RECON_BANK_SFTP_KEY", "remote_dir": str(outbox), "glob": "*",
                 "settle_seconds": 0.2, **overrides}
        return settings_from({"extract": {"bank_transactions": entry}})

    return settings


def test_delivered_files_are_fetched_as_they_came_once_and_stay_on_the_server(bank, outbox, landing):
    gb_bytes = STATEMENT.encode("gb18030")
    put(outbox, "ICBC_20250505.csv", gb_bytes)
    put(outbox, "MT940_20250505.sta", b":20:STMT\r\n:25:6222001\r\n", mtime=1_746_406_800)
    put(outbox, ".hidden", b"x")
    put(outbox, "upload.csv.part", b"half")
    settings = bank()

    first = extract_sources(landing, AS_OF, settings)
    assert not first.failed
    assert landed(landing) == ["bank_transactions/2025-05-06/ICBC_20250505.csv",
                               "bank_transactions/2025-05-06/MT940_20250505.sta"]
    fetched = landing / "bank_transactions/2025-05-06/ICBC_20250505.csv"
    assert fetched.read_bytes() == gb_bytes  # byte for byte, encoding untouched
    assert int(fetched.stat().st_mtime) == 1_746_403_200  # the bank's modification time
    assert sorted(p.name for p in outbox.iterdir()) == [".hidden", "ICBC_20250505.csv", "MT940_20250505.sta",
                                                       "upload.csv.part"]

    again = extract_sources(landing, datetime(2025, 5, 7, 0, 30), settings)
    assert again.files == [] and again.results[0].note == "没有新文件"

    put(outbox, "ICBC_20250506.csv", STATEMENT.encode("utf-8"))
    put(outbox, "ICBC_20250505.csv", gb_bytes + "6222001,T2,2025-05-05 11:00:00,5.00,张三,\n".encode("gb18030"))
    third = extract_sources(landing, datetime(2025, 5, 7, 0, 30), settings)
    # New, and re-sent with a new size: both fetched; the earlier copy stays as received.
    assert third.files == ["bank_transactions/2025-05-07/ICBC_20250505.csv", "bank_transactions/2025-05-07/ICBC_20250506.csv"]

    narrowed = extract_sources(landing, datetime(2025, 5, 8), bank(glob="*.sta"))
    assert narrowed.files == []  # the .sta file was fetched already; the glob never widens


@contextmanager
def bank_still_writing(path, lines, pause: float):
    """The bank appends `lines` to `path` one by one, `pause` seconds apart, while the block runs."""
    stop = threading.Event()

    def write() -> None:
        with path.open("ab") as handle:
            for line in lines:
                if stop.is_set():
                    return
                handle.write(line)
                handle.flush()
                time.sleep(pause)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join()


def test_a_file_still_being_written_is_waited_for(bank, outbox, landing):
    put(outbox, "CMB_20250505.csv", STATEMENT.encode())
    appended = [f"6222001,X{n},2025-05-05 12:00:00,1.00,李四,\n".encode() for n in range(8)]
    with bank_still_writing(outbox / "CMB_20250505.csv", appended, pause=0.12):
        report = extract_sources(landing, AS_OF, bank(settle_seconds=0.4, settle_timeout=20))
    assert report.files == ["bank_transactions/2025-05-06/CMB_20250505.csv"]
    assert (landing / report.files[0]).read_bytes() == (outbox / "CMB_20250505.csv").read_bytes()
    assert (landing / report.files[0]).read_text().count("\n") == 10  # header, T1 and all eight appended lines


def test_a_file_that_keeps_growing_is_left_for_the_next_run(bank, outbox, landing):
    put(outbox, "ABC_20250505.csv", STATEMENT.encode())
    put(outbox, "BOC_20250505.csv", b"still coming\n")
    with bank_still_writing(outbox / "BOC_20250505.csv", itertools.repeat(b"more\n"), pause=0.05):
        report = extract_sources(landing, AS_OF, bank(settle_seconds=0.2, settle_timeout=1))
    message = report.failed[0].error
    assert message.startswith("bank_transactions: 远程文件仍在写入") and "BOC_20250505.csv" in message
    assert landed(landing) == ["bank_transactions/2025-05-06/ABC_20250505.csv"]  # the finished one still came
    assert list((landing / ".extract" / "tmp").iterdir()) == []

    later = extract_sources(landing, datetime(2025, 5, 6, 1, 0), bank())  # the upload has finished meanwhile
    assert later.files == ["bank_transactions/2025-05-06/BOC_20250505.csv"]


def test_a_key_the_server_does_not_know_is_refused(bank, sftp, outbox, landing, monkeypatch):
    put(outbox, "ICBC_20250505.csv", STATEMENT.encode())
    monkeypatch.setenv("RECON_BANK_SFTP_KEY", str(sftp.other_key))
    message = extract_sources(landing, AS_OF, bank()).failed[0].error
    assert message.startswith("bank_transactions: SFTP 登录失败") and "RECON_BANK_SFTP_KEY" in message
    assert landed(landing) == []

    monkeypatch.setenv("RECON_BANK_SFTP_KEY", str(sftp.key_file) + ".missing")
    assert "私钥文件不存在" in extract_sources(landing, AS_OF, bank()).failed[0].error


def test_an_unreachable_server_fails_within_the_timeout(bank, landing):
    refused = extract_sources(landing, AS_OF, bank(port=servers.free_port())).failed[0].error
    assert refused.startswith("bank_transactions: 无法连接 SFTP 服务器 127.0.0.1:") and "连接被拒绝" in refused

    with servers.silent_server() as port:
        started = time.monotonic()
        hung = extract_sources(landing, AS_OF, bank(port=port, timeout=1)).failed[0].error
        elapsed = time.monotonic() - started
    assert "超时" in hung and elapsed < 10
    assert landed(landing) == []


def test_a_changed_host_key_is_refused(bank, outbox, landing):
    settings = bank()
    extract_sources(landing, AS_OF, settings)  # first contact pins the server's key
    state_file = landing / ".extract" / "bank_transactions.json"
    state = json.loads(state_file.read_text())
    (pinned,) = state["host_keys"].values()
    assert pinned.startswith("ssh-ed25519 ")
    state["host_keys"] = {k: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherServerKeyOtherServerKeyOtherServerK" for k in state["host_keys"]}
    state_file.write_text(json.dumps(state))
    put(outbox, "ICBC_20250505.csv", STATEMENT.encode())
    message = extract_sources(landing, AS_OF, settings).failed[0].error
    assert "主机密钥与首次连接时不同" in message
    assert landed(landing) == []
