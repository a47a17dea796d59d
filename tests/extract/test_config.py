"""The `extract:` settings: the issue's forms parse as they are; mistakes get one clear line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from recon_pipeline.extract.config import ExtractError, HttpSpec, SftpSpec, SqlSpec, extract_specs
from recon_pipeline.settings import PROJECT_ROOT, load_settings

ISSUE_FORMS = {"extract": {
    "crm_contracts": {"kind": "sql", "url_env": "RECON_CRM_DB_URL", "table": "crm_middle"},
    "bank_transactions": {"kind": "sftp", "host": "127.0.0.1", "port": 2222, "user": "bank",
                          "key_file_env": "RECON_BANK_SFTP_KEY", "remote_dir": "/outbox", "glob": "*"},
}}


def test_the_issues_settings_forms(settings_from):
    crm, bank = extract_specs(settings_from(ISSUE_FORMS))
    assert isinstance(crm, SqlSpec) and (crm.name, crm.source, crm.url_env, crm.table, crm.query) == (
        "crm_contracts", "crm_contracts", "RECON_CRM_DB_URL", "crm_middle", None)
    assert isinstance(bank, SftpSpec) and (bank.host, bank.port, bank.user, bank.key_file_env, bank.remote_dir, bank.glob) == (
        "127.0.0.1", 2222, "bank", "RECON_BANK_SFTP_KEY", "/outbox", "*")


def test_defaults_have_no_extraction(settings):
    assert extract_specs(settings) == []


def test_an_entry_can_feed_another_source_and_be_switched_off(settings_from):
    settings = settings_from({"extract": {
        "bank_cmb": {**ISSUE_FORMS["extract"]["bank_transactions"], "source": "bank_transactions"},
        "crm_contracts": None,
    }})
    (spec,) = extract_specs(settings)
    assert (spec.name, spec.source) == ("bank_cmb", "bank_transactions")


def test_http_entry(settings_from):
    (spec,) = extract_specs(settings_from({"extract": {"legal_archive": {
        "kind": "http", "method": "post", "url": "https://api.dingtalk.com/v1.0/workflow/processes/instanceIds/query",
        "records": "result.list", "pagination": {"type": "cursor", "cursor_path": "result.nextToken", "cursor_param": "nextToken"},
        "detail": {"url": "https://api.dingtalk.com/v1.0/workflow/processInstances", "params": {"processInstanceId": "{id}"},
                   "record": "result"},
        "form_values": "formComponentValues", "auth_header": "x-acs-dingtalk-access-token", "auth_env": "RECON_DINGTALK_TOKEN",
    }}}))
    assert isinstance(spec, HttpSpec)
    assert spec.request.method == "POST" and spec.pagination.location == "body" and spec.detail.records == "result"
    assert spec.form_values.path == "formComponentValues"


@pytest.mark.parametrize("entry, message", [
    ({"kind": "ftp"}, "设置 extract.crm_contracts: 未知的 kind 'ftp'（可用: sql, sftp, http）"),
    ({"kind": "sql", "url_env": "X"}, "设置 extract.crm_contracts: 需要 table 或 query 之一（只能一个）"),
    ({"kind": "sql", "url_env": "X", "table": "t", "query": "select 1"}, "需要 table 或 query 之一"),
    ({"kind": "sql", "table": "t"}, "设置 extract.crm_contracts: 缺少 url_env"),
    ({"kind": "sql", "url_env": "X", "tabel": "t", "table": "t"}, "未知的选项 tabel"),
    ({"kind": "sql", "url_env": "X", "table": "t", "timeout": "soon"}, "extract.crm_contracts.timeout: 应为数字"),
    ({"kind": "sftp", "host": "h", "user": "u"}, "需要 key_file_env（私钥路径所在的环境变量）或 password_env"),
    ({"kind": "http", "url": "http://x", "pagination": {"type": "cursor"}}, "游标分页需要 cursor_path 与 cursor_param"),
    ({"kind": "http", "url": "http://x", "pagination": {"type": "offset"}}, "pagination.type: 应为 none / cursor / page_number 之一"),
    ({"kind": "http", "url": "http://x", "auth_header": "Authorization"}, "auth_header 与 auth_env 需同时配置"),
])
def test_mistakes_are_one_line_each(settings_from, entry, message):
    with pytest.raises(ExtractError) as caught:
        extract_specs(settings_from({"extract": {"crm_contracts": entry}}))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_entry_for_no_known_source(settings_from):
    with pytest.raises(ExtractError, match="数据源 invoices 不存在"):
        extract_specs(settings_from({"extract": {"invoices": {"kind": "sql", "url_env": "X", "table": "t"}}}))


def test_the_readme_example_is_valid(tmp_path):
    # The README's "接入你的系统" section is what users copy: it must parse as it stands.
    readme = Path(PROJECT_ROOT, "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## 接入你的系统"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "settings.yaml"
    path.write_text(block, encoding="utf-8")
    specs = extract_specs(load_settings(path))
    assert [s.name for s in specs] == ["erp_invoices", "crm_contracts", "bank_transactions", "bank_cmb", "legal_archive"]
    assert {s.kind for s in specs} == {"sql", "sftp", "http"}
    assert yaml.safe_load(block)["value_mappings"]["review_status"]["agree"] == "approved"
