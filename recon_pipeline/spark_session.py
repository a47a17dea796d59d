"""The Spark engine's session: one SparkSession per process, configured from the `spark` settings.

Everything that makes Spark and DuckDB compute the same numbers is pinned here rather than left
to a cluster's defaults: the session time zone (the settings' `timezone`; the warehouse's
timestamps are local wall-clock time), ANSI SQL (an overflow or a bad cast is an error, as in
DuckDB, never a silent NULL), exact decimal arithmetic (no precision loss), Parquet timestamps as
UTC-adjusted microseconds (which DuckDB reads without guessing). The tables (Parquet), the local
metastore, the logs and Spark's scratch space live under one folder (setting `spark.dir`,
default `<warehouse dir>/<warehouse stem>.spark/`), never in the working directory, and Spark's
own output goes to `<spark.dir>/logs/`, not to the user's terminal.

dbt-spark (`method: session`) calls `SparkSession.builder.getOrCreate()` inside the same process,
so dbt runs on this session. The embedded (Derby) metastore admits one process at a time.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urlparse

from recon_pipeline.settings import Settings
from recon_pipeline.sources import SOURCES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ENGINES = ("duckdb", "spark")
JAVA_PACKAGE = "openjdk-17-jre-headless"
MIN_JAVA = 17

# The namespaces (Spark databases) the pipeline writes: the same schema names as in DuckDB.
PIPELINE_SCHEMAS = ("raw", "staging", "matching", "intermediate", "mart")


class SparkEngineError(Exception):
    """The Spark engine cannot run; the message is one line for the user."""


@dataclass(frozen=True)
class SparkOptions:
    """The `spark` settings resolved for one warehouse (paths absolute)."""

    master: str
    dir: Path
    warehouse_dir: str
    timezone: str
    driver_memory: str = "2g"
    executor_memory: str = "2g"
    shuffle_partitions: int = 0  # 0: as many as local cores in local mode, Spark's default (200) on a cluster
    metastore_uri: str | None = None
    dbt_method: str = "session"
    thrift_host: str = "localhost"
    thrift_port: int = 10000
    dbt_threads: int = 0  # 0: the local cores in local mode, 8 on a cluster
    conf: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, warehouse: str | os.PathLike) -> "SparkOptions":
        own = dict(settings.raw.get("spark") or {})
        warehouse = Path(warehouse).resolve()
        home = Path(own.get("dir") or warehouse.with_name(f"{warehouse.stem}.spark")).expanduser().resolve()
        method = str(own.get("dbt_method") or "session")
        if method not in ("session", "thrift"):
            raise SparkEngineError(f"设置 spark.dbt_method 只能是 session 或 thrift，而不是 {method}")
        return cls(
            master=str(os.environ.get("RECON_SPARK_MASTER") or own.get("master") or "local[*]"),
            dir=home,
            warehouse_dir=str(own.get("warehouse_dir") or home / "warehouse"),
            timezone=settings.timezone,
            driver_memory=str(own.get("driver_memory") or "2g"),
            executor_memory=str(own.get("executor_memory") or "2g"),
            shuffle_partitions=int(own.get("shuffle_partitions") or 0),
            metastore_uri=own.get("metastore_uri") or None,
            dbt_method=method,
            thrift_host=str(own.get("thrift_host") or "localhost"),
            thrift_port=int(own.get("thrift_port") or 10000),
            dbt_threads=int(own.get("dbt_threads") or 0),
            conf={str(k): str(v) for k, v in (own.get("conf") or {}).items()},
        )

    @property
    def is_local(self) -> bool:
        return self.master.startswith("local")

    @property
    def local_cores(self) -> int:
        """The cores of a local master: local -> 1, local[2] / local[2,3] -> 2, local[*] -> all."""
        found = re.fullmatch(r"local(?:-cluster)?(?:\[(\*|\d+)(?:,\s*\d+)?\])?", self.master.strip())
        if not found or found.group(1) is None:
            return 1
        return (os.cpu_count() or 1) if found.group(1) == "*" else int(found.group(1))

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    def spark_conf(self) -> dict[str, str]:
        """The complete session configuration (pure: what `spark_session` starts with)."""
        log4j = self.dir / "conf" / "log4j2.properties"
        java_options = f"-Dderby.system.home={self.dir} -Dlog4j2.configurationFile=file:{log4j}"
        conf = {
            "spark.master": self.master,
            "spark.app.name": "recon-pipeline",
            "spark.driver.memory": self.driver_memory,
            "spark.executor.memory": self.executor_memory,
            "spark.driver.extraJavaOptions": java_options,
            "spark.sql.catalogImplementation": "hive",
            "spark.sql.warehouse.dir": self.warehouse_dir,
            # Same numbers as DuckDB: local wall-clock time, errors instead of NULLs, exact decimals.
            "spark.sql.session.timeZone": self.timezone,
            "spark.sql.ansi.enabled": "true",
            "spark.sql.decimalOperations.allowPrecisionLoss": "false",
            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            "spark.sql.sources.partitionOverwriteMode": "dynamic",
            # A shuffle of a small local run is spread over the cores, not over 200 tasks that each
            # cost a scheduling round; a cluster keeps Spark's default, coalesced by AQE.
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions or (self.local_cores if self.is_local else 200)),
            "spark.sql.adaptive.enabled": "true",
            # Partitions (one folder per drop date) are found in the table's folder, not registered
            # one by one in the metastore: an insert of a year of drops is one write, not thousands of
            # metastore calls (and Hive's metastore cannot filter on a column named `_drop_date`).
            "spark.sql.hive.manageFilesourcePartitions": "false",
            "spark.hadoop.hive.stats.autogather": "false",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.local.dir": str(self.dir / "tmp"),
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            # Python workers run the pipeline's own interpreter (its packages: the matching engine).
            "spark.pyspark.python": sys.executable,
            "spark.pyspark.driver.python": sys.executable,
        }
        if self.metastore_uri:
            conf["spark.hadoop.hive.metastore.uris"] = self.metastore_uri
        else:
            database = self.dir / "metastore" / "metastore_db"
            conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = f"jdbc:derby:;databaseName={database};create=true"
        if self.is_local:
            # Bind to loopback only: a shared machine, no ports offered to the network.
            conf["spark.driver.host"] = "127.0.0.1"
            conf["spark.driver.bindAddress"] = "127.0.0.1"
        conf.update(self.conf)
        return conf


def engine_choice(option: str | None, settings: Settings) -> str:
    """The engine: the command-line option, else RECON_ENGINE, else the setting `engine`."""
    engine = (option or os.environ.get("RECON_ENGINE") or settings.raw.get("engine") or "duckdb").strip().lower()
    if engine not in ENGINES:
        raise SparkEngineError(f"未知的引擎 {engine}：只能是 duckdb 或 spark（--engine / RECON_ENGINE / 设置 engine）")
    return engine


# ---------------------------------------------------------------------------- preflight


def java_executable() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    return shutil.which("java")


def require_java() -> None:
    """Java 17+ must be installed: Spark runs on the JVM."""
    java = java_executable()
    if java is None:
        raise SparkEngineError(
            f"未找到 Java：Spark 引擎需要 Java {MIN_JAVA} 或更高版本，请安装 {JAVA_PACKAGE}"
            f"（apt-get install {JAVA_PACKAGE}）或设置 JAVA_HOME"
        )
    try:
        shown = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SparkEngineError(f"无法运行 Java（{java}）：{exc}；请安装 {JAVA_PACKAGE}") from None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    major = int(found.group(1)) if found else 0
    if major == 1 and found and found.group(2):  # "1.8.0" style
        major = int(found.group(2))
    if major and major < MIN_JAVA:
        raise SparkEngineError(f"Java 版本过低（{major}）：Spark 引擎需要 Java {MIN_JAVA}+，请安装 {JAVA_PACKAGE}")


def master_endpoints(master: str) -> list[tuple[str, int]]:
    """Host and port of each master a URL names (`spark://a:7077,b:7077`, `k8s://https://h:443`)."""
    if master.startswith("spark://"):
        endpoints = []
        for part in master.removeprefix("spark://").split(","):
            host, _, port = part.strip().rpartition(":")
            endpoints.append((host or part, int(port) if port.isdigit() else 7077))
        return endpoints
    if master.startswith("k8s://"):
        url = urlparse(master.removeprefix("k8s://"))
        if url.hostname:
            return [(url.hostname, url.port or (443 if url.scheme == "https" else 80))]
    return []  # local[*], yarn (found through HADOOP_CONF_DIR): nothing to dial


def require_reachable(options: SparkOptions, timeout: float = 5.0) -> None:
    """Fail in one line, before Spark retries for minutes, when the cluster cannot be reached."""
    targets = [(options.master, host, port) for host, port in master_endpoints(options.master)]
    if options.dbt_method == "thrift":
        targets.append((f"thrift://{options.thrift_host}:{options.thrift_port}", options.thrift_host, options.thrift_port))
    for shown, host, port in targets:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise SparkEngineError(f"无法连接 Spark 集群 {shown}（{reason}）；请检查设置 spark.master / spark.thrift_host") from None


# ---------------------------------------------------------------------------- the session

_session: "SparkSession | None" = None
_session_conf: dict[str, str] | None = None

_LOG4J = """\
# Written by recon_pipeline.spark_session: Spark's own log goes to a file, not the terminal.
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yyyy-MM-dd HH:mm:ss}} %p %c{{1}}: %m%n
# Expected noise: codegen falling back to the interpreter, Hive's unused settings.
logger.codegen.name = org.apache.spark.sql.catalyst.expressions.codegen
logger.codegen.level = off
logger.hiveconf.name = org.apache.hadoop.hive.conf.HiveConf
logger.hiveconf.level = error
"""


def _quiet_python_side(log_dir: Path) -> None:
    """PySpark's and py4j's Python loggers and warnings go to the log file too."""
    from pyspark.logger import PySparkLogger

    handler = logging.FileHandler(log_dir / "pyspark.log", encoding="utf-8")
    for name in ("pyspark", "py4j", "SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        # PySpark logs a failed query's context through its own logger class, which must stay.
        logger = PySparkLogger.getLogger(name) if name.endswith("ContextLogger") else logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.WARNING)
    # PySpark warns about pandas 3 on every pandas UDF; its pandas UDFs work with it here.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Point this process's stdout/stderr at a file while the JVM starts: the JVM (and the
    Python workers it forks) inherit the file and print there for their whole life."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


def spark_session(options: SparkOptions) -> "SparkSession":
    """The process's SparkSession for these options, started once (restarted when they change)."""
    global _session, _session_conf
    conf = options.spark_conf()
    if _session is not None and _session_conf == conf and not _session.sparkContext._jsc.sc().isStopped():
        return _session
    require_java()
    require_reachable(options)
    stop_spark_session()
    for folder in (options.dir / "conf", options.log_dir, options.dir / "tmp", options.dir / "metastore"):
        folder.mkdir(parents=True, exist_ok=True)
    (options.dir / "conf" / "log4j2.properties").write_text(
        _LOG4J.format(log_file=options.log_dir / "spark.log"), encoding="utf-8")
    _quiet_python_side(options.log_dir)
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers forked by the JVM daemon

    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark_log = options.log_dir / "spark.log"
    logged_before = spark_log.stat().st_size if spark_log.exists() else 0
    try:
        with _output_to(options.log_dir / "jvm.log"):
            session = builder.enableHiveSupport().getOrCreate()
    except Exception as exc:  # noqa: BLE001 - the JVM's reason is in the log; the user gets one line
        if not options.is_local and _master_refused(spark_log, logged_before):
            # Something answered the port (a proxy, another service), but no Spark master did.
            raise SparkEngineError(
                f"无法连接 Spark 集群 {options.master}（该地址没有可用的 Spark master）；"
                f"请检查设置 spark.master；详见 {spark_log}") from None
        raise SparkEngineError(
            f"无法启动 Spark（{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}）；"
            f"详见 {options.log_dir / 'jvm.log'}") from None
    session.sparkContext.setLogLevel("WARN")
    _session, _session_conf = session, conf
    return session


# What Spark logs when its application never registers with the master (StandaloneAppClient).
_MASTER_FAILURES = ("Failed to connect to master", "All masters are unresponsive", "Could not connect to")


def _master_refused(spark_log: Path, offset: int) -> bool:
    """Whether this start's part of Spark's log says the master could not be reached."""
    try:
        with open(spark_log, encoding="utf-8", errors="replace") as handle:
            handle.seek(offset)
            return any(failure in handle.read() for failure in _MASTER_FAILURES)
    except OSError:
        return False


def session_running() -> bool:
    """Whether this process has a SparkSession started by `spark_session`."""
    try:
        return _session is not None and not _session.sparkContext._jsc.sc().isStopped()
    except Exception:  # noqa: BLE001 - a JVM that went away: no session
        return False


def stop_spark_session() -> None:
    """Stop the process's session (a new one may be started afterwards, on the same JVM)."""
    global _session, _session_conf
    if _session is None:
        return
    from pyspark.sql import SparkSession

    try:
        _session.stop()
    finally:
        _session, _session_conf = None, None
        SparkSession._instantiatedSession = None
        SparkSession._activeSession = None


# DuckDB column types (as the warehouse DDL spells them) -> Spark SQL.
SPARK_TYPES = {"VARCHAR": "STRING", "INTEGER": "INT", "BIGINT": "BIGINT", "DATE": "DATE", "TIMESTAMP": "TIMESTAMP",
               "BOOLEAN": "BOOLEAN", "DOUBLE": "DOUBLE"}


def spark_type(duckdb_type: str) -> str:
    return SPARK_TYPES.get(duckdb_type, duckdb_type)  # DECIMAL(18,2) is spelled the same


def mirror_warehouse_tables(session: "SparkSession", schema: str, tables: list[str],
                            partitioned_by: dict[str, tuple[str, ...]] | None = None) -> None:
    """Create (if missing) Spark Parquet tables with the columns and types of the tables the
    Python side owns in the DuckDB warehouse (`warehouse.ensure_schema`): one definition."""
    import duckdb

    from recon_pipeline.warehouse import ensure_schema

    session.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
    existing = {row.tableName for row in session.sql(f"SHOW TABLES IN {schema}").collect() if not row.isTemporary}
    missing = [t for t in tables if t not in existing]
    if not missing:
        return
    conn = duckdb.connect()
    try:
        ensure_schema(conn)
        for table in missing:
            rows = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()
            columns = ", ".join(f"`{name}` {spark_type(kind)}" for name, kind in rows)
            partitions = (partitioned_by or {}).get(table)
            clause = f" PARTITIONED BY ({', '.join(partitions)})" if partitions else ""
            session.sql(f"CREATE TABLE {schema}.{table} ({columns}) USING parquet{clause}")
    finally:
        conn.close()


# How the Python-owned tables are partitioned in Spark: raw history by drop date (a reload replaces
# whole drops); the ingest log and the quarantine are small and not partitioned (ingest/spark_tables.py).
PARTITIONS = {**{source: ("_drop_date",) for source in SOURCES}, "quarantine": (), "ingest_log": (),
              "receipt_links": ()}


def ensure_spark_schema(session: "SparkSession") -> None:
    """`warehouse.ensure_schema` for the Spark engine: the namespaces and the Python-owned tables."""
    for schema in PIPELINE_SCHEMAS:
        session.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
    mirror_warehouse_tables(session, "raw", [*SOURCES, "quarantine", "ingest_log"], PARTITIONS)
    mirror_warehouse_tables(session, "matching", ["receipt_links"])


def dbt_profile_env(options: SparkOptions) -> dict[str, str]:
    """What the `spark` output of dbt_project/profiles.yml reads from the environment."""
    return {
        "RECON_SPARK_DBT_METHOD": options.dbt_method,
        "RECON_SPARK_THRIFT_HOST": options.thrift_host,
        "RECON_SPARK_THRIFT_PORT": str(options.thrift_port),
        # dbt's models and tests run as concurrent Spark jobs: one per local core keeps them from
        # queueing for the same cores (a cluster has its executors' cores).
        "RECON_SPARK_DBT_THREADS": str(options.dbt_threads or (options.local_cores if options.is_local else 8)),
    }
