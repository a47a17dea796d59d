"""`recon inspect` shows how a file would be read before it is dropped in."""

import subprocess
import sys

from recon_pipeline.ingest.inspection import inspect_file
from recon_pipeline.settings import load_settings


def test_inspect_reports_mapping_sample_and_quarantine(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(
        "账号,流水号,交易时间,金额,对方户名,网点\n6222,T1,2025-03-01 10:00,\"1,234.50\",北京某某科技,浦东\n6222,T2,昨天,5.00,甲,\n"
        .encode("gb18030"))
    result = inspect_file(path, load_settings())
    assert result.source == "bank_transactions" and result.encoding == "gb18030"
    assert result.mapped["对方户名"] == "counterparty_name" and result.unmapped == ["网点"]
    assert result.sample.iloc[0]["amount"] == "1234.50"
    assert result.quarantined.iloc[0]["_row_number"] == 3 and "txn_time" in result.quarantined.iloc[0]["reason"]


def test_inspect_command_prints_in_chinese(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("客户编号,客户名称\nC1,杭州某某网络科技有限公司\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "recon_pipeline.cli", "inspect", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "数据源: customers" in result.stdout and "没有会被隔离的行" in result.stdout
