"""The Spark engine's settings and preflight, without starting Spark: what the session is pinned
to, where its files go, how the engine is chosen, and the one-line errors when Java is missing
or the cluster cannot be reached (run as `recon run` in a subprocess, as cron would)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from recon_pipeline.settings import load_settings
from recon_pipeline.run_state import RunInputs
from recon_pipeline.spark_session import (
    JAVA_PACKAGE, SparkEngineError, SparkOptions, dbt_profile_env, engine_choice, master_endpoints, require_reachable,
)


def _settings(tmp_path, text=""):
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_session_config_pins_what_makes_spark_compute_like_duckdb(tmp_path):
    settings = _settings(tmp_path, "timezone: Asia/Shanghai\n")
    conf = SparkOptions.from_settings(settings, tmp_path / "wh" / "recon.duckdb").spark_conf()
    assert conf["spark.sql.session.timeZone"] == "Asia/Shanghai"
    assert conf["spark.sql.ansi.enabled"] == "true"  # overflow and bad casts fail, as in DuckDB
    assert conf["spark.sql.decimalOperations.allowPrecisionLoss"] == "false"  # money stays exact
    assert conf["spark.sql.parquet.outputTimestampType"] == "TIMESTAMP_MICROS"  # DuckDB reads it unambiguously
    assert conf["spark.driver.memory"] == "2g"
    assert conf["spark.master"] == "local[*]"
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.pyspark.python"] == sys.executable


def test_tables_metastore_and_logs_live_under_one_setting_never_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = SparkOptions.from_settings(_settings(tmp_path), "wh/recon.duckdb")
    assert default.dir == (tmp_path / "wh" / "recon.spark").resolve()
    chosen = SparkOptions.from_settings(_settings(tmp_path, f"spark:\n  dir: {tmp_path / 'big'}\n"), "wh/recon.duckdb")
    conf = chosen.spark_conf()
    assert conf["spark.sql.warehouse.dir"] == str(tmp_path / "big" / "warehouse")
    assert f"databaseName={tmp_path / 'big' / 'metastore' / 'metastore_db'}" in conf["spark.hadoop.javax.jdo.option.ConnectionURL"]
    assert f"-Dderby.system.home={tmp_path / 'big'}" in conf["spark.driver.extraJavaOptions"]
    assert conf["spark.local.dir"] == str(tmp_path / "big" / "tmp")


def test_a_cluster_gets_its_master_shared_metastore_and_own_settings(tmp_path):
    settings = _settings(tmp_path, """
spark:
  master: spark://10.1.2.3:7077
  metastore_uri: thrift://10.1.2.4:9083
  executor_memory: 8g
  conf: {spark.executor.instances: 10}
""")
    conf = SparkOptions.from_settings(settings, tmp_path / "recon.duckdb").spark_conf()
    assert conf["spark.master"] == "spark://10.1.2.3:7077"
    assert conf["spark.hadoop.hive.metastore.uris"] == "thrift://10.1.2.4:9083"
    assert "spark.hadoop.javax.jdo.option.ConnectionURL" not in conf
    assert "spark.driver.bindAddress" not in conf  # executors must reach the driver
    assert conf["spark.executor.memory"] == "8g" and conf["spark.executor.instances"] == "10"
    assert conf["spark.sql.shuffle.partitions"] == "200"
    assert dbt_profile_env(SparkOptions.from_settings(settings, tmp_path / "recon.duckdb"))["RECON_SPARK_DBT_THREADS"] == "8"


def test_a_local_run_sizes_shuffles_and_dbt_threads_to_its_cores(tmp_path):
    options = SparkOptions.from_settings(_settings(tmp_path, "spark:\n  master: local[3]\n"), tmp_path / "recon.duckdb")
    assert options.spark_conf()["spark.sql.shuffle.partitions"] == "3"
    assert dbt_profile_env(options)["RECON_SPARK_DBT_THREADS"] == "3"
    everything = SparkOptions.from_settings(_settings(tmp_path), tmp_path / "recon.duckdb")
    assert everything.spark_conf()["spark.sql.shuffle.partitions"] == str(os.cpu_count())
    chosen = SparkOptions.from_settings(
        _settings(tmp_path, "spark:\n  master: local[3]\n  shuffle_partitions: 16\n  dbt_threads: 1\n"), "x.duckdb")
    assert chosen.spark_conf()["spark.sql.shuffle.partitions"] == "16" and dbt_profile_env(chosen)["RECON_SPARK_DBT_THREADS"] == "1"


def test_a_run_on_the_other_engine_is_never_taken_for_this_one():
    """The no-change skip compares the inputs of the last publication, engine included: after a
    DuckDB run the first Spark run computes (its own tables are empty), and back."""
    duck = RunInputs("data", "code", "settings", "2025-05-06T09:00:00", "duckdb")
    spark = RunInputs("data", "code", "settings", "2025-05-06T09:00:00", "spark")
    assert duck.key() != spark.key() and duck.key(with_as_of=False) != spark.key(with_as_of=False)


def test_master_urls_name_the_endpoints_to_dial():
    assert master_endpoints("spark://a:7077,b:7078") == [("a", 7077), ("b", 7078)]
    assert master_endpoints("k8s://https://k8s.example:6443") == [("k8s.example", 6443)]
    assert master_endpoints("local[2]") == [] and master_endpoints("yarn") == []


def test_engine_comes_from_the_option_else_the_environment_else_the_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("RECON_ENGINE", raising=False)
    settings = _settings(tmp_path, "engine: spark\n")
    assert engine_choice(None, settings) == "spark"
    monkeypatch.setenv("RECON_ENGINE", "duckdb")
    assert engine_choice(None, settings) == "duckdb"
    assert engine_choice("SPARK", settings) == "spark"
    with pytest.raises(SparkEngineError, match="duckdb 或 spark"):
        engine_choice("flink", settings)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_cluster_is_one_line_before_spark_retries(tmp_path):
    options = SparkOptions.from_settings(_settings(tmp_path), tmp_path / "recon.duckdb")
    options = SparkOptions(**{**options.__dict__, "master": f"spark://127.0.0.1:{_closed_port()}"})
    with pytest.raises(SparkEngineError, match="无法连接 Spark 集群") as caught:
        require_reachable(options, timeout=2)
    assert "\n" not in str(caught.value)


def _recon_run(tmp_path, env):
    landing = tmp_path / "landing"
    landing.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "recon_pipeline.cli", "run", "--landing", str(landing), "--warehouse",
         str(tmp_path / "recon.duckdb"), "--as-of", "2025-05-06T09:00:00", "--engine", "spark"],
        capture_output=True, text=True, env=env, timeout=300)


def test_recon_run_on_spark_without_java_names_the_package_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(Path(sys.executable).parent)  # this venv only: no java on it
    env.pop("RECON_SPARK_MASTER", None)
    result = _recon_run(tmp_path, env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Java" in lines[0] and JAVA_PACKAGE in lines[0]
    assert not (tmp_path / "recon.published.duckdb").exists()


def test_recon_run_against_an_unreachable_cluster_fails_in_one_line(tmp_path):
    env = {**os.environ, "RECON_SPARK_MASTER": f"spark://127.0.0.1:{_closed_port()}"}
    result = _recon_run(tmp_path, env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "无法连接 Spark 集群" in lines[0], result.stderr
