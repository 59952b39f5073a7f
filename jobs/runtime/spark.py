"""The one place a SparkSession is obtained.

- An active session (Databricks, a notebook, a test fixture, spark-submit) is used as it is.
- Otherwise, with SPARK_REMOTE set, a Spark Connect session to it (pyspark's own variable: `sc://host:port`
  for a server, `local[N]` for a local Connect server started by this process with the defaults below).
- Otherwise, when `lakesift serve` runs over the same lakehouse folder, a Spark Connect session to it
  (LAKESIFT_ATTACH=0 turns this off): no JVM to start, the tables already registered.
- Otherwise a local session is built: local[*], Delta Lake from the cached jars, a session catalog that
  every new process fills from the lakehouse folder (jobs/runtime/tables.py), UTC, Arrow on.
  Settings already given (spark-submit --conf, spark-defaults.conf) win over these defaults.
Jobs never create or stop a session; the CLI and notebooks call `get_spark` once.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import warnings
from pathlib import Path

from jobs.runtime import jars
from jobs.runtime.arrow import ARROW_BATCH_ROWS
from jobs.runtime.config import JobConfig


LOG4J2 = Path(__file__).with_name("log4j2.properties")
# malloc serves blocks up to 32 MiB (its cap) from the heap and never trims it: see local_defaults
WORKER_GLIBC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184"


class SetupError(RuntimeError):
    """The environment is not ready (missing jars, missing packages): the message says what to run."""


def local_defaults(cfg: JobConfig) -> dict[str, str]:
    cores = os.cpu_count() or 2
    ui = os.environ.get("LAKESIFT_SPARK_UI", "") not in ("", "0", "false")
    return {
        "spark.master": os.environ.get("LAKESIFT_SPARK_MASTER", "local[*]"),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # The session catalog is rebuilt from the lakehouse folder by each process (tables.register_lakehouse),
        # so any number of processes can query and write the same tables: no single-user Derby metastore.
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": f"{cfg.home}/_warehouse",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(max(8, 4 * cores)),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS),
        "spark.driver.memory": os.environ.get("LAKESIFT_DRIVER_MEMORY", "4g"),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "true" if ui else "false",
        # Spark's own progress bar never: for a terminal the CLI shows jobs/progress.py's line (with time left)
        "spark.ui.showConsoleProgress": "false",
        # Delta replays its log with this many tasks; 50 (the default) is slow for small local tables.
        "spark.databricks.delta.snapshotPartitions": "2",
        # Partitioned writes otherwise sort every task's rows by partition (all payload bytes, with spill):
        # one open writer per partition instead cut ingest's write from 13.6s to 7.7s (bench/throughput.py).
        "spark.sql.maxConcurrentOutputFileWriters": "16",
        # zstd: smaller than snappy and, for HTML payloads, faster to write (bench/throughput.py).
        "spark.sql.parquet.compression.codec": "zstd",
        # Generated classes are cached 100 at a time by default; ingest -> extract -> heuristics makes 105,
        # so each run compiled 45 of them again (Janino, then the JIT): none with room for 1000.
        "spark.sql.codegen.cache.maxEntries": "1000",
        # Python workers keep the memory they free for their next batch instead of returning it to the OS
        # (pyarrow's mimalloc purges after 10 ms; glibc unmaps blocks over 128 KiB): each page handed back
        # is a page fault when the next batch arrives. On 1.1 GB of HTML, extract's Python CPU fell from
        # 27.1 to 23.8 s and its page faults by half (bench/throughput.py data, three runs each).
        "spark.executorEnv.MIMALLOC_PURGE_DELAY": "-1",
        "spark.executorEnv.GLIBC_TUNABLES": WORKER_GLIBC_TUNABLES,
        "spark.sql.execution.pyspark.udf.faulthandler.enabled": "true",
        "spark.python.worker.faulthandler.enabled": "true",
        "spark.log.level": os.environ.get("LAKESIFT_SPARK_LOG_LEVEL", "WARN"),
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG4J2}",
    }


def _delta_on_classpath(conf) -> bool:
    packages = conf.get("spark.jars.packages", "") or ""
    given = conf.get("spark.jars", "") or ""
    return "delta-spark" in packages or "delta-spark" in given


def is_connect(spark) -> bool:
    """Whether `spark` is a Spark Connect client session (no SparkContext, no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def serve_file(cfg: JobConfig) -> str:
    """Where `lakesift serve` records its endpoint, inside the lakehouse folder it serves."""
    return os.path.join(cfg.home, "_serve", "connect.json")


def attach_url(cfg: JobConfig) -> str | None:
    """The sc:// URL of a `lakesift serve` running over this local lakehouse folder, or None (none runs, a
    stale record of one that stopped, LAKESIFT_ATTACH=0, or a catalog or remote lakehouse)."""
    if os.environ.get("LAKESIFT_ATTACH", "1").lower() in ("0", "false", "no") or cfg.catalog is not None \
            or "://" in cfg.home:
        return None
    try:
        with open(serve_file(cfg)) as fh:
            served = json.load(fh)
        host, port = str(served["connect_host"]), int(served["port"])
        same = os.path.realpath(served["home"]) == os.path.realpath(cfg.home)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not same:
        return None
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return None
    return f"sc://{host}:{port}"


def _local_builder(cfg: JobConfig, builder, conf, extra: dict[str, str], master: bool = True):
    """`builder` with the local defaults not already given in `conf` (the master too, unless `master` is
    False), Delta's jars, and `extra`."""
    for key, value in {**local_defaults(cfg), **extra}.items():
        if not conf.contains(key) and (master or key != "spark.master"):
            builder = builder.config(key, value)
    if not _delta_on_classpath(conf):
        missing = jars.missing_jars()
        if missing:
            raise SetupError(
                f"Delta Lake jars are missing ({', '.join(p.name for p in missing)}). "
                "Run `make setup` (or `python -m jobs.runtime.jars`) once with network access."
            )
        builder = builder.config("spark.jars", ",".join(str(p) for p in jars.jar_paths()))
        # also on the driver's system classpath: threads Spark does not create (the Thrift server's
        # session handlers) do not see spark.jars
        builder = builder.config("spark.driver.extraClassPath", os.pathsep.join(str(p) for p in jars.jar_paths()))
    return builder


def _connect_session(cfg: JobConfig, url: str, app_name: str):
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.remote(url).appName(app_name)
    if url.startswith("local"):
        # the local Connect server this process starts takes the same settings as a local session
        builder = _local_builder(cfg, builder, SparkConf(), {}, master=False)
    with warnings.catch_warnings():
        # pyspark also tries to set the server's start-up settings on the new session, and warns for each
        warnings.filterwarnings("ignore", message="Failed to set spark", category=UserWarning)
        spark = builder.getOrCreate()
    try:
        # Spark 4.0's server reuses the plan it resolved for a DataFrame's schema when that DataFrame is then
        # written, and that plan no longer reports its Observation's metrics (the jobs' counts come back empty)
        spark.conf.set("spark.connect.session.planCache.enabled", "false")
    except Exception as exc:                        # a server that does not offer the setting
        logging.getLogger(__name__).warning("could not turn off the Connect plan cache (%s): observed counts "
                                            "may come back empty", exc)
    return spark


def get_spark(cfg: JobConfig | None = None, app_name: str = "lakesift", extra: dict[str, str] | None = None):
    """The active session, or a new one (see the module's text) with the lakehouse's tables registered by
    name. `extra`: settings for a new local session (lakesift serve's Connect plugin)."""
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    cfg = cfg or JobConfig()
    spark = SparkSession.getActiveSession()
    if spark is None:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        url = os.environ.get("SPARK_REMOTE") or (None if extra else attach_url(cfg))
        if url:
            spark = _connect_session(cfg, url, app_name)
            logging.getLogger(__name__).info("%s %s", "Spark Connect session to" if os.environ.get("SPARK_REMOTE")
                                             else "attached to lakesift serve at", url)
    if spark is None:
        if os.environ.get("PYSPARK_GATEWAY_PORT"):
            # launched by spark-submit: its JVM is already up; connect first so that SparkConf() holds
            # spark-submit's --master/--conf and no local default overrides them
            from pyspark import SparkContext

            SparkContext._ensure_initialized()
        conf = SparkConf()
        spark = _local_builder(cfg, SparkSession.builder.appName(app_name), conf, extra or {}).getOrCreate()
    if cfg.catalog is None:
        from jobs.runtime.tables import register_lakehouse

        register_lakehouse(spark, cfg, only_missing=is_connect(spark))
    return spark


def spark_sql_command(cfg: JobConfig, extra: list[str]) -> tuple[list[str], dict]:
    """(argv, environment) of pyspark's spark-sql shell over a local lakehouse: Delta configured, and an
    init file registering every table and view (the shell keeps its own Derby metastore under
    <home>/_spark_sql, one shell at a time)."""
    import pyspark

    from jobs.runtime import tables

    if cfg.catalog is not None or "://" in cfg.home:
        raise SetupError("lakesift spark-sql serves a local lakehouse folder; with a metastore catalog use that "
                         "platform's SQL editor, or `lakesift sql`")
    missing = jars.missing_jars()
    if missing:
        raise SetupError("Delta Lake jars are missing: run `make setup` (or `lakesift setup`) once with network access")
    found = tables.lakehouse_tables(cfg)
    statements = [f"CREATE SCHEMA IF NOT EXISTS {tables.schema_name(cfg, layer)};" for layer in sorted({layer for layer, _ in found})]
    for layer, name in found:
        location = tables.table_location(cfg, layer, name).replace("'", "\\'")
        statements.append(f"CREATE TABLE IF NOT EXISTS {tables.schema_name(cfg, layer)}.`{name}` USING delta LOCATION '{location}';")
    present = set(found)
    statements += [sql + ";" for _, sql in tables.view_statements(cfg, lambda layer, name: (layer, name) in present)]
    state = os.path.join(cfg.home, "_spark_sql")
    os.makedirs(state, exist_ok=True)
    init = os.path.join(state, "init.sql")
    with open(init, "w") as fh:
        fh.write("\n".join(statements) + "\n")
    home = os.path.dirname(pyspark.__file__)
    argv = [os.path.join(home, "bin", "spark-sql"), "--master", os.environ.get("LAKESIFT_SPARK_MASTER", "local[*]"),
            "--jars", ",".join(str(p) for p in jars.jar_paths()),
            "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
            "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "--conf", f"spark.sql.warehouse.dir={state}/warehouse",
            "--conf", f"spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={state}/metastore_db;create=true",
            "--conf", f"spark.driver.extraJavaOptions=-Dderby.system.home={state} -Dlog4j2.configurationFile=file:{LOG4J2}",
            "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.session.timeZone=UTC",
            "-i", init, *extra]
    env = {**os.environ, "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"), "SPARK_HOME": home}
    return argv, env
