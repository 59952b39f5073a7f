"""Hostile or careless commands: `lakesift sql` only reads unless --write is given, and the servers bind
beyond loopback only with --expose."""
from __future__ import annotations

import pytest

from jobs.cli import main
from jobs.runtime import tables
from jobs.runtime.config import JobConfig
from schemas import bronze


def _errors_table(spark, home: str) -> None:
    cfg = JobConfig(home=home)
    rows = [(f"/crawl/{i}.warc.gz", i, None, "CorruptBytes", "bad bytes") for i in range(3)]
    tables.replace_where(spark.createDataFrame(rows, bronze.INGEST_ERRORS.schema), cfg, bronze.INGEST_ERRORS, "true")


@pytest.mark.parametrize("statement,kind", [
    ("DELETE FROM bronze.ingest_errors", "DeleteFromTable"),
    ("INSERT INTO bronze.ingest_errors SELECT * FROM bronze.ingest_errors", "InsertInto"),
    ("DROP TABLE bronze.ingest_errors", "DropTable"),
    ("UPDATE bronze.ingest_errors SET message = 'x'", "UpdateTable"),
    ("SET spark.sql.shuffle.partitions = 1", "SetCommand"),
    ("CREATE TABLE bronze.t2 AS SELECT * FROM bronze.ingest_errors", "CreateTable"),
])
def test_sql_refuses_statements_that_change_the_lakehouse(spark, home, capsys, statement, kind):
    _errors_table(spark, home)
    capsys.readouterr()
    assert main(["sql", statement, "--home", home]) == 2
    err = capsys.readouterr().err
    assert kind in err and "--write" in err
    assert spark.table("bronze.ingest_errors").count() == 3 and not spark.catalog.tableExists("bronze.t2")


def test_sql_reads_and_writes_when_asked(spark, home, capsys):
    _errors_table(spark, home)
    for query in ("SELECT count(*) AS n FROM bronze.ingest_errors", "SHOW TABLES IN bronze",
                  "DESCRIBE TABLE bronze.ingest_errors", "EXPLAIN DELETE FROM bronze.ingest_errors"):
        capsys.readouterr()
        assert main(["sql", query, "--home", home]) == 0, capsys.readouterr().err
    assert spark.table("bronze.ingest_errors").count() == 3
    assert main(["sql", "DELETE FROM bronze.ingest_errors WHERE source_offset = 1", "--write", "--home", home]) == 0
    assert spark.table("bronze.ingest_errors").count() == 2


@pytest.mark.parametrize("command", ["ui", "serve-sql"])
def test_servers_stay_on_loopback_unless_exposed(home, capsys, command):
    capsys.readouterr()
    assert main([command, "--host", "0.0.0.0", "--home", home]) == 2
    assert "--expose" in capsys.readouterr().err
