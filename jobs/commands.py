"""The commands that are not stages: looking at the lakehouse (sql, tables, views, recipes), serving it (serve,
ui, serve-sql, spark-sql), running elsewhere (pack-env, submit) and setup. Each is `add(parser)` for its
arguments and `run(args, cfg, spark)` for its work; jobs/cli.py wires them with the stages."""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from jobs import console

BIND_HELP = "bind address (default 127.0.0.1; any other needs --expose)"


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add: Callable[[argparse.ArgumentParser], None]
    run: Callable          # run(args, cfg, spark) -> exit code; spark() starts the session on first call
    spark: bool = True     # whether it needs the lakehouse's session


def _none(p) -> None:
    return None


def _recipes_args(p) -> None:
    p.add_argument("name", nargs="?", help="print this recipe's YAML")


def _recipes(args, cfg, spark) -> int:
    from importlib import resources

    from jobs.gold import recipe as R

    if args.name:
        print((resources.files("jobs.gold") / "recipes" / f"{args.name}.yaml").read_text()
              if args.name in R.shipped_recipes() else open(args.name).read(), end="")
        return 0
    rows = [(name, len(r.predicates), ", ".join(r.families()) or "-", r.description)
            for name, r in ((n, R.load(n)) for n in R.shipped_recipes())]
    console.table(("recipe", "predicates", "signals", "description"), rows, width=90)
    return 0


def _sql_args(p) -> None:
    p.add_argument("query", help='e.g. "SELECT language, count(*) FROM silver.documents GROUP BY 1"')
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (aligned, for people), csv, or json (one object per line)")
    p.add_argument("--max-rows", type=int, default=100, help="rows shown in table format (default 100)")
    p.add_argument("--write", action="store_true",
                   help="allow statements that change tables or settings (DELETE, INSERT, CREATE, SET, ...); "
                        "without it only queries, SHOW, DESCRIBE and EXPLAIN run")


def writes(session, query: str) -> str | None:
    """The first node of the statement's parsed plan that is not known to only read (a command other than
    SHOW/DESCRIBE/EXPLAIN, an INSERT, ...), or None for a read-only statement. Works the same through Spark
    Connect (jobs/runtime/sqlplan.py)."""
    from pyspark.errors import ParseException

    from jobs.runtime import sqlplan

    try:
        nodes = sqlplan.writing_nodes(session, query)
    except ParseException as exc:
        # Spark's parser without Delta's extension: VACUUM, OPTIMIZE, RESTORE and the like are not SQL to it
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        raise ValueError(f"{first}\n(if this is a Delta command Spark's own grammar lacks, such as VACUUM, OPTIMIZE "
                         "or RESTORE, --write runs it)") from None
    return nodes[0] if nodes else None


def _sql(args, cfg, spark) -> int:
    changing = None if args.write else writes(spark(), args.query)
    if changing:
        raise ValueError(f"this statement may change the lakehouse ({changing} is not known to only read); "
                         "`lakesift sql` only reads unless --write is given")
    df = spark().sql(args.query)
    if args.format == "table":
        rows = df.limit(args.max_rows + 1).collect()
        console.table(df.columns, rows[: args.max_rows])
        if len(rows) > args.max_rows:
            print(f"… more rows (showing {args.max_rows}; --max-rows N or --format csv|json for all)", file=sys.stderr)
    else:
        (console.csv_rows if args.format == "csv" else console.json_lines)(df.columns, df.toLocalIterator())
    return 0


def _tables(args, cfg, spark) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from jobs.runtime.tables import last_commit, lakehouse_tables, register_lakehouse

    session = spark()                  # a local lakehouse's tables are registered as the session starts
    names = ([f"{layer}.{name}" for layer, name in lakehouse_tables(cfg)] if cfg.catalog is None
             else register_lakehouse(session, cfg))

    def row(name: str) -> tuple:
        committed = last_commit(cfg, *name.split("."))
        if committed is None:                       # a catalog table: Delta's history says
            detail = session.sql(f"DESCRIBE HISTORY {name} LIMIT 1").first()
            committed = detail["version"], str(detail["timestamp"])
        return name, session.table(name).count(), *committed

    # a query a table, answered side by side (through Spark Connect each is a round trip)
    with ThreadPoolExecutor(8) as pool:
        rows = list(pool.map(row, names))
    console.table(("table", "rows", "version", "last write"), rows)
    return 0


def _views(args, cfg, spark) -> int:
    from jobs.runtime.tables import create_views
    from schemas.views import VIEWS

    made = set(create_views(spark(), cfg))
    console.table(("view", "reads", "answers"), [
        (v.fullname if v.fullname in made else f"{v.fullname} (not created: a table is missing)",
         ", ".join(f"{a}.{b}" for a, b in v.tables()), v.comment) for v in VIEWS], width=70)
    return 0


def _server_args(port: int) -> Callable:
    def add(p) -> None:
        p.add_argument("--port", type=int, default=port, help=f"port (default {port})")
        p.add_argument("--host", default="127.0.0.1", help=BIND_HELP)
        p.add_argument("--expose", action="store_true",
                       help="allow a --host other than loopback: the server has no authentication, and anyone "
                            "who reaches the port can read and change the lakehouse (ui: its runs)")
    return add


def _loopback_only(args) -> None:
    """A server binds beyond this machine only when asked twice (--host and --expose)."""
    import ipaddress

    if args.expose or args.host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"--host {args.host} would serve the lakehouse beyond this machine without authentication; "
                         "add --expose if that is what you want")


def _ui_args(p) -> None:
    _server_args(5000)(p)
    # MLflow's default is 4 server processes, each importing MLflow before the UI answers: on 2 cores the
    # first answer came after 11.9 s with 4, 6.7 s with 1 (ad-hoc timing, demo lakehouse)
    p.add_argument("--workers", type=int, default=1, help="server processes (default 1: one person's UI)")


def _ui(args, cfg, spark) -> int:
    from jobs.runtime.tracking import artifact_root, client_and_experiment, tracking_uri

    _loopback_only(args)
    client_and_experiment(cfg)          # creates the store on first use, so the UI never shows an empty error
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri(cfg),
           "--host", args.host, "--port", str(args.port), "--workers", str(args.workers)]
    if artifact_root(cfg):
        cmd += ["--default-artifact-root", artifact_root(cfg)]
    print(f"MLflow UI on http://{args.host}:{args.port} (Ctrl-C stops it)", file=sys.stderr)
    return _serve_until_stopped(cmd)


def _serve_until_stopped(cmd: list[str]) -> int:
    """Run a server (and the workers it starts) in a process group of its own, and stop that whole group when
    this process is stopped: SIGTERM or Ctrl-C to `lakesift ui` never leaves a server listening."""
    import signal

    proc = subprocess.Popen(cmd, start_new_session=True)

    def stop(*_):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        return proc.wait()
    finally:
        stop()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)


def _serve_sql(args, cfg, spark) -> int:
    import signal
    import threading

    # Trust model: HiveServer2 here has no authentication and runs any SQL a client sends (writes, and
    # java_method, included): it is for this machine's BI tools and beeline, so it binds to loopback unless
    # --expose says otherwise. HiveServer2 reads its bind address and port from these variables.
    _loopback_only(args)
    os.environ["LAKESIFT_ATTACH"] = "0"       # the Thrift server starts inside this process's own Spark
    os.environ["HIVE_SERVER2_THRIFT_BIND_HOST"] = args.host
    os.environ["HIVE_SERVER2_THRIFT_PORT"] = str(args.port)
    session = spark()
    session.sparkContext._jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithContext(
        session._jsparkSession.sqlContext())
    url = f"jdbc:hive2://{args.host}:{args.port}/"
    print(f"JDBC endpoint {url} (Spark Thrift server; tables and views of {cfg.catalog or cfg.home}).\n"
          f"  beeline -u {url} -e \"SHOW TABLES IN silver\"\nCtrl-C (or SIGTERM) stops it.", file=sys.stderr, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    session.stop()
    return 0


def _serve(args, cfg, spark) -> int:
    import json
    import signal
    import socket
    import threading
    from datetime import datetime, timezone

    from jobs.runtime.spark import attach_url, get_spark, serve_file

    # Trust model as serve-sql's: Spark Connect here has no authentication and runs what a client sends, so
    # it binds to loopback unless --expose says otherwise.
    _loopback_only(args)
    if cfg.catalog is not None or "://" in cfg.home:
        raise ValueError("lakesift serve serves a local lakehouse folder; a catalog's tables are served by that "
                         "platform (Databricks: serverless or a cluster, through Databricks Connect)")
    if os.environ.get("SPARK_REMOTE"):
        raise ValueError(f"SPARK_REMOTE is set ({os.environ['SPARK_REMOTE']}): lakesift serve starts the server "
                         "itself; unset it")
    running = attach_url(cfg)
    if running:
        raise ValueError(f"lakesift serve already answers at {running} for {cfg.home}")
    with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            raise ValueError(f"cannot listen on {args.host}:{args.port} ({exc.strerror}); --port picks another") from None
    session = get_spark(cfg, app_name="lakesift-serve", extra={
        "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
        "spark.connect.grpc.binding.address": args.host, "spark.connect.grpc.binding.port": str(args.port)})
    from concurrent.futures import ThreadPoolExecutor

    from jobs.runtime.tables import lakehouse_tables

    names = [f"{layer}.{name}" for layer, name in lakehouse_tables(cfg)]
    with ThreadPoolExecutor(4) as pool:      # every table's Delta log read once: the first client's answer is warm
        list(pool.map(lambda name: session.table(name).count(), names))
    host = "127.0.0.1" if args.host in ("0.0.0.0", "localhost") else "::1" if args.host == "::" else args.host
    url = f"sc://{host}:{args.port}"
    record = {"home": os.path.realpath(cfg.home), "url": url, "connect_host": host, "port": args.port,
              "pid": os.getpid(), "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path = serve_file(cfg)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(f"{path}.{os.getpid()}.partial", "w") as fh:
        json.dump(record, fh)
    os.replace(f"{path}.{os.getpid()}.partial", path)
    print(f"Spark Connect at {url} over {cfg.home} ({len(names)} tables registered).\n"
          f"  lakesift commands with --home {cfg.home} use it (LAKESIFT_ATTACH=0 starts a session of their own)\n"
          f"  pyspark: SparkSession.builder.remote(\"{url}\").getOrCreate()\n"
          "Ctrl-C (or SIGTERM) stops it.", file=sys.stderr, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        with contextlib.suppress(OSError, ValueError):
            with open(path) as fh:
                ours = json.load(fh).get("pid") == os.getpid()
            if ours:
                os.remove(path)
        session.stop()
    return 0


def passthrough(values: list[str]) -> list[str]:
    """Arguments after `--`, handed on unchanged (only the separator itself is dropped)."""
    return values[1:] if values[:1] == ["--"] else list(values)


def _spark_sql_args(p) -> None:
    p.add_argument("shell_args", nargs=argparse.REMAINDER, metavar="-- ARGS",
                   help='passed to spark-sql, e.g. -- -e "SELECT count(*) FROM silver.documents"')


def _spark_sql(args, cfg, spark) -> int:
    from jobs.runtime.spark import spark_sql_command

    cmd, env = spark_sql_command(cfg, passthrough(args.shell_args))
    os.execvpe(cmd[0], cmd, env)


def _pack_env_args(p) -> None:
    p.add_argument("--output", help="archive (default dist/lakesift-env.tar.gz)")


def _pack_env(args, cfg, spark) -> int:
    from jobs import submit

    out = submit.pack_environment(Path(args.output) if args.output else submit.DEFAULT_ARCHIVE,
                                  progress=lambda m: print(f"pack-env: {m}", file=sys.stderr, flush=True))
    print(f"{out} ({out.stat().st_size / 1e6:.0f} MB): pass it to `lakesift submit --env-archive`")
    return 0


def _submit_args(p) -> None:
    p.add_argument("--master", required=True, help="e.g. spark://HOST:7077, yarn, k8s://https://HOST:443")
    p.add_argument("--env-archive", help="packed executor environment (default dist/lakesift-env.tar.gz)")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark conf (repeatable)")
    p.add_argument("cli_args", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS",
                   help="the lakesift command to run, e.g. -- --home /shared/lakehouse demo")


def _submit(args, cfg, spark) -> int:
    from jobs import submit

    cli_args = passthrough(args.cli_args)
    if not cli_args:
        raise ValueError("give the lakesift command to run after --, e.g. lakesift submit --master spark://h:7077 -- demo")
    archive = Path(args.env_archive) if args.env_archive else submit.DEFAULT_ARCHIVE
    argv, env = submit.submit_command(args.master, archive, cli_args, args.conf)
    return subprocess.call(argv, env=env)


def _vacuum_args(p) -> None:
    p.add_argument("--older-than", type=float, default=24.0, metavar="HOURS",
                   help="also remove unreferenced files without a lakesift write id (Spark's) once this old "
                        "(default 24)")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")


def _vacuum(args, cfg, spark) -> int:
    """Remove the data files no version of any table names (what killed or failed writes left). Never the
    files of old versions: Delta's VACUUM removes those, and time travel to the versions MLflow runs name
    needs them."""
    from jobs.runtime import datafiles
    from jobs.runtime.tables import lakehouse_tables, table_location

    if cfg.catalog or ("://" in cfg.home and not cfg.home.startswith("file:")):
        print("lakesift vacuum works on a local lakehouse folder; for catalog or remote tables use Delta's "
              "VACUUM (which also removes the files of versions older than the table's retention).", file=sys.stderr)
        return 2
    rows, total_files, total_bytes = [], 0, 0
    for layer, name in lakehouse_tables(cfg):
        files, freed = datafiles.orphans(table_location(cfg, layer, name), args.older_than * 3600, args.dry_run)
        total_files, total_bytes = total_files + len(files), total_bytes + freed
        rows.append((f"{layer}.{name}", len(files), f"{freed / 1e6:.1f}"))
        for path in files if args.dry_run else ():
            print(f"would remove {path}")
    console.table(("table", "files removed" if not args.dry_run else "files to remove", "MB"), rows)
    print(f"{'would remove' if args.dry_run else 'removed'} {total_files} unreferenced data file(s), "
          f"{total_bytes / 1e6:.1f} MB", file=sys.stderr)
    return 0


def _setup(args, cfg, spark) -> int:
    from jobs.runtime import jars

    for path in jars.fetch():
        print(path)
    return 0


COMMANDS: tuple[Command, ...] = (
    Command("recipes", "list the shipped recipes, or print one", _recipes_args, _recipes, spark=False),
    Command("sql", "run a SQL query over the lakehouse tables", _sql_args, _sql),
    Command("tables", "list the lakehouse tables with their row counts and Delta versions", _none, _tables),
    Command("views", "create the views for common questions (automatic for a local lakehouse) and list them",
            _none, _views),
    Command("ui", "serve the MLflow UI for the local store on 127.0.0.1", _ui_args, _ui, spark=False),
    Command("serve", "keep a local Spark engine running over the lakehouse (Spark Connect on 127.0.0.1): "
            "every lakesift command and notebook attaches to it and answers in seconds", _server_args(15002), _serve,
            spark=False),
    Command("serve-sql", "serve the lakehouse tables over JDBC/ODBC (Spark Thrift server) for BI tools and beeline",
            _server_args(10000), _serve_sql),
    Command("spark-sql", "the spark-sql shell with the lakehouse's tables and views registered", _spark_sql_args,
            _spark_sql, spark=False),
    Command("pack-env", "pack the executors' Python environment for spark-submit --archives (venv-pack)",
            _pack_env_args, _pack_env, spark=False),
    Command("submit", "run a lakesift command on a Spark cluster with spark-submit", _submit_args, _submit, spark=False),
    Command("vacuum", "remove the data files no table version names (left by killed or failed writes)",
            _vacuum_args, _vacuum, spark=False),
    Command("setup", "download Delta Lake's jars from Maven Central into the local cache (once)", _none, _setup,
            spark=False),
)
