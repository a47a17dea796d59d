# Two commands for a newcomer: `make demo` (run the pipeline on demo data) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := demo
WAREHOUSE := $(abspath warehouse/recon.duckdb)
DEMO_AS_OF := 2025-05-06T09:00:00
DAGSTER_PORT ?= 3000
DAGSTER_HOME_DIR := $(abspath .dagster_home)
DAGSTER_ENV := DAGSTER_HOME=$(DAGSTER_HOME_DIR) RECON_LANDING_DIR=$(abspath $(DEMO_DIR)/landing) RECON_WAREHOUSE=$(WAREHOUSE)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: install manifest browser servers java demo test test-fast ui bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# dagster-dbt loads dbt's manifest at import time; a fresh clone has none.
manifest: install
	cd dbt_project && ../$(BIN)/dbt parse --quiet --profiles-dir . --project-dir .

# Dashboard tests drive Debian's Chromium (never a downloaded browser); the CJK font makes the
# screenshots readable. Installed when missing and we may (root); otherwise those tests skip.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium + fonts-wqy-microhei (apt-get)"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; \
	fi

# Extraction tests start a real PostgreSQL (initdb/pg_ctl) and OpenSSH sshd on loopback ports.
# Installed when missing and we may (root); otherwise those tests skip and say why.
servers:
	@if { ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ ! -x /usr/sbin/sshd ]; } \
		&& [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing postgresql + openssh-server (apt-get)"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			-o DPkg::Lock::Timeout=600 postgresql openssh-server >/dev/null; \
	fi

# The Spark engine's tests run Spark in local mode on Debian's Java 17. Installed when missing and we
# may (root); otherwise those tests skip with the reason.
java:
	@if ! command -v java >/dev/null && [ -z "$$JAVA_HOME" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing openjdk-17-jre-headless (apt-get)"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 openjdk-17-jre-headless >/dev/null; \
	fi

# The demo runs through the production runner (the Dagster job, persistent instance in
# .dagster_home), so `make ui` then shows its run, step logs, dbt checks and partitions.
demo: manifest
	$(BIN)/recon demo --out $(DEMO_DIR)
	@mkdir -p $(DAGSTER_HOME_DIR) && test -f $(DAGSTER_HOME_DIR)/dagster.yaml || printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME_DIR)/dagster.yaml
	@echo "Dagster 作业 nightly_reconciliation 运行中（as-of $(DEMO_AS_OF)，日志: $(DAGSTER_HOME_DIR)/demo-run.log）…"
	@$(DAGSTER_ENV) $(BIN)/dagster job execute -m recon_pipeline.definitions -j nightly_reconciliation \
		--tags '{"recon/as_of": "$(DEMO_AS_OF)"}' > $(DAGSTER_HOME_DIR)/demo-run.log 2>&1 \
		|| (tail -40 $(DAGSTER_HOME_DIR)/demo-run.log; exit 1)
	$(BIN)/recon status --warehouse $(WAREHOUSE)
	@echo ""
	@echo "结果 (results): $(WAREHOUSE)  — 表在 schema mart；BI / 看板读取只读发布文件 warehouse/recon.published.duckdb"
	@echo "  同样的运行（命令行）: $(BIN)/recon run --landing $(DEMO_DIR)/landing --warehouse $(WAREHOUSE) --as-of $(DEMO_AS_OF)"
	@echo "Dagster UI（含本次运行与物化记录）: make ui  然后打开 http://127.0.0.1:$(DAGSTER_PORT)"
	@echo "看板 (dashboard): $(BIN)/recon dashboard --warehouse $(WAREHOUSE) --landing $(DEMO_DIR)/landing  然后打开 http://127.0.0.1:8765"

ui: manifest
	mkdir -p $(DAGSTER_HOME_DIR)
	$(DAGSTER_ENV) $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(DAGSTER_PORT)

# The whole suite, end-to-end group included.
test: manifest browser servers java
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# Unit tests only (fast loop while developing).
test-fast: manifest
	$(BIN)/python -m pytest -m "not e2e"

bench: manifest
	$(BIN)/python bench/bench_pipeline.py

clean:
	rm -rf $(DEMO_DIR) warehouse .recon-dbt dbt_project/target dbt_project/logs .dagster_home
