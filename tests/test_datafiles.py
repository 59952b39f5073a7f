"""Bronze data files written by the Python workers and committed through Delta's transaction API
(jobs/runtime/datafiles.py): the same table as Spark's writer makes, statistics Delta can skip on, and
replacement that keeps other files' rows."""
from __future__ import annotations

import glob
import json
import threading
from datetime import datetime, timezone

import pytest

from jobs.demo.sample_crawl import SampleCrawlSpec, write_sample_crawl
from jobs.runtime import tables
from jobs.runtime.config import JobConfig
from jobs.runtime.datafiles import _stat, partition_folder
from schemas import bronze
from tests.test_bronze_silver_jobs import checksum, ingest

pytestmark = pytest.mark.filterwarnings("ignore")


def _adds(home: str) -> list[dict]:
    """The add actions of bronze.warc_records's log, stats parsed."""
    out = []
    for path in sorted(glob.glob(f"{home}/bronze/warc_records/_delta_log/*.json")):
        for line in open(path, encoding="utf-8"):
            action = json.loads(line)
            if "add" in action:
                add = action["add"]
                out.append({**add, "stats": json.loads(add["stats"]) if add.get("stats") else None})
    return out


@pytest.fixture
def crawl(tmp_path, shared_data):
    a, b = tmp_path / "a.warc.gz", tmp_path / "b.warc.gz"
    write_sample_crawl(a, SampleCrawlSpec(pages=30, seed=5))
    write_sample_crawl(b, SampleCrawlSpec(pages=20, seed=6, crawl="CC-MAIN-2099-01"))
    # as ingest records them: symlinks resolved (the shared data may be reached through a link)
    return [p.resolve() for p in (a, b, shared_data / "warc" / "warcfile.warc.gz", shared_data / "warc" / "aut-example.arc.gz")]


@pytest.mark.slow          # two lakehouses of real crawls, compared: the slow tier keeps make test-fast under 5 minutes
def test_workers_write_the_table_spark_writes(spark, tmp_path, crawl):
    """The same files ingested by the workers' writer and, for a table with deletion vectors (which only
    Spark may write), by Spark's: equal rows; per-file statistics that count the rows and that Delta skips
    files on, with the same answers as reading every file."""
    by_workers, by_spark = str(tmp_path / "w"), str(tmp_path / "s")
    cfg = JobConfig(home=by_spark)
    tables.ensure_table(spark, cfg, bronze.WARC_RECORDS)
    spark.sql("ALTER TABLE bronze.warc_records SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    assert not tables.python_files(spark, cfg, bronze.WARC_RECORDS)
    ingest(spark, by_spark, *crawl)
    spark_rows = checksum(spark.table("bronze.warc_records"))
    queries = {
        "one file": f"source_file = '{crawl[2]}'",
        "two files": f"source_file IN ('{crawl[0]}', '{crawl[3]}')",
        "no file": "source_file = '/nowhere.warc.gz'",
        "a record": "record_id = (SELECT max(record_id) FROM bronze.warc_records)",
        "dates": "warc_date >= TIMESTAMP '2011-01-01' AND warc_date < TIMESTAMP '2012-01-01'",
        "sizes": "payload_length BETWEEN 1000 AND 20000 AND http_status = 200",
        "uri prefix": "target_uri >= 'http://www.archive.org' AND target_uri < 'http://www.archive.org~'",
    }
    expected = {k: checksum(spark.table("bronze.warc_records").where(q)) for k, q in queries.items()}

    summary = ingest(spark, by_workers, *crawl)
    assert tables.python_files(spark, JobConfig(home=by_workers), bronze.WARC_RECORDS)
    assert checksum(spark.table("bronze.warc_records")) == spark_rows and spark_rows[0] == summary["responses"] > 300
    adds = _adds(by_workers)
    assert len(adds) == 4 and all(not a["path"].endswith(".crc") for a in adds)
    assert sum(a["stats"]["numRecords"] for a in adds) == spark_rows[0]
    crawls = {a["partitionValues"]["crawl"] for a in adds}
    assert "CC-MAIN-2099-01" in crawls and all(a["path"].startswith("crawl=") for a in adds)
    for name, query in queries.items():
        df = spark.table("bronze.warc_records").where(query)
        assert checksum(df) == expected[name], name
    assert len(spark.table("bronze.warc_records").where(queries["one file"]).inputFiles()) == 1
    assert len(spark.table("bronze.warc_records").where(queries["no file"]).inputFiles()) == 0
    history = spark.sql("DESCRIBE HISTORY bronze.warc_records LIMIT 1").first()
    assert history.operation == "WRITE" and "`source_file` IN" in history.operationParameters["predicate"]


def test_the_local_writer_runs_only_with_the_delta_it_was_checked_against(spark):
    """The commit goes through delta-spark's internal classes: a Delta upgrade must be checked, not assumed."""
    from jobs.runtime.datafiles import CHECKED_DELTA, delta_version
    from jobs.runtime.jars import DELTA_VERSION

    assert delta_version(spark) == DELTA_VERSION, "the session did not load the Delta jars jobs/runtime/jars.py fetches"
    assert delta_version(spark) in CHECKED_DELTA, (
        f"Delta {delta_version(spark)} was not checked against runtime/datafiles.py: run this file and "
        "tests/test_bronze_silver_jobs.py with it, then add it to CHECKED_DELTA")


def test_statistics_bound_every_value_they_stand_for():
    prefix = "/data/crawl/segments/170000000/w"         # 32 characters
    assert len(prefix) == 32
    for value in (prefix + "arc/00001.warc.gz", prefix + "é-file", prefix + "\U0001f600"):
        low, high = _stat(value, upper=False), _stat(value, upper=True)
        assert low == prefix and low <= value < high
        assert value.encode() < high.encode()           # Delta compares UTF-8 bytes
    assert _stat(prefix + "\U0010ffff", upper=True) is None
    assert _stat("short", upper=True) == _stat("short", upper=False) == "short"
    t = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
    assert (_stat(t, upper=False), _stat(t, upper=True)) == ("2024-05-06T07:08:09.123Z", "2024-05-06T07:08:09.124Z")
    assert _stat(t.replace(microsecond=5000), upper=True) == "2024-05-06T07:08:09.005Z"
    assert partition_folder({"crawl": "CC-MAIN-2024-10"}) == "crawl=CC-MAIN-2024-10"
    assert partition_folder({"crawl": "a/b c=é"}) == "crawl=a%2Fb%20c%3D%C3%A9"


@pytest.mark.slow          # a crawl ingested three times: about 30 s, the slow tier keeps make test-fast under 5 minutes
def test_force_keeps_the_rows_of_other_files_sharing_a_data_file(spark, home, tmp_path, crawl):
    """A data file holding rows of several WARC files (Spark's writer makes them) is written again
    without the replaced file's rows, in the same commit that adds the new ones."""
    same_crawl = tmp_path / "a2.warc.gz"
    write_sample_crawl(same_crawl, SampleCrawlSpec(pages=12, seed=7))
    ingest(spark, home, crawl[0], same_crawl, crawl[1])
    before = checksum(spark.table("bronze.warc_records"))
    rows = spark.table("bronze.warc_records")
    tables.replace_where(spark.createDataFrame(rows.collect(), rows.schema).coalesce(1), JobConfig(home=home),
                         bronze.WARC_RECORDS, "true")
    assert checksum(spark.table("bronze.warc_records")) == before
    files = spark.sql("SELECT _metadata.file_path AS f, count(DISTINCT source_file) AS n FROM bronze.warc_records "
                      "GROUP BY 1").collect()
    assert sorted(r.n for r in files) == [1, 2]        # a and a2 share a data file

    forced = ingest(spark, home, crawl[0], force=True)
    assert forced["files_read"] == 1
    assert checksum(spark.table("bronze.warc_records")) == before
    per_file = {r.source_file: r.n for r in spark.sql(
        "SELECT source_file, count(*) AS n FROM bronze.warc_records GROUP BY 1").collect()}
    assert per_file[str(crawl[0])] == forced["responses"] and len(per_file) == 3
    files = spark.sql("SELECT _metadata.file_path AS f, count(DISTINCT source_file) AS n FROM bronze.warc_records "
                      "GROUP BY 1").collect()
    assert sorted(r.n for r in files) == [1, 1, 1]     # a2's rows written again on their own


@pytest.mark.slow          # two ingest processes at once: about 25 s, in the slow tier with the other concurrency tests
def test_two_ingests_of_one_file_at_once_leave_it_once(spark, home, tmp_path, crawl):
    """Both runs see the file as new and write it; Delta's conflict check on the files they read makes
    the later commit replace the earlier one's rows instead of adding to them. Both also create the new
    lakehouse's tables at once, in a session whose names point at another lakehouse."""
    ingest(spark, str(tmp_path / "elsewhere"), crawl[1])
    results, errors = [], []

    def run():
        try:
            results.append(ingest(spark, home, crawl[0]))
        except Exception as exc:         # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, [str(e)[:2000] for e in errors]
    n = spark.sql("SELECT count(*) AS n, count(DISTINCT record_id) AS ids FROM bronze.warc_records").first()
    assert n.n == n.ids == max(r["responses"] for r in results) > 0


def _silver_adds(home: str, table: str) -> list[dict]:
    adds = []
    for path in sorted(glob.glob(f"{home}/silver/{table}/_delta_log/*.json")):
        adds += [json.loads(line)["add"] for line in open(path, encoding="utf-8") if '"add"' in line]
    return adds


@pytest.mark.slow          # two lakehouses through ingest, extract and heuristics: about a minute
def test_silver_tables_written_by_the_workers_equal_spark_writes(spark, tmp_path, crawl):
    """extract and heuristics on a local lakehouse: the workers write silver's data files (pyarrow's
    Parquet); with deletion vectors on the silver tables Spark writes them. Equal tables and counts after
    a full run, after a run over one crawl (the other crawls' rows kept) and after a run over every crawl.
    Switching homes registers the tables again: the ones whose properties were altered keep them."""
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    from jobs.silver import compute_heuristics, extract_documents
    from schemas import silver

    def jobs(home: str, crawls=()) -> tuple[dict, dict]:
        docs = extract_documents.run(spark, extract_documents.Config(home=home, crawls=crawls))
        signals = compute_heuristics.run(spark, compute_heuristics.Config(home=home, crawls=crawls))
        return ({k: v for k, v in docs.items() if k != "run_id"}, {k: v for k, v in signals.items() if k != "run_id"})

    def silver_of(home: str) -> tuple:
        tables.register_lakehouse(spark, JobConfig(home=home))
        return checksum(spark.table("silver.documents")), checksum(spark.table("silver.signals_heuristic"))

    by_workers, by_spark = str(tmp_path / "w"), str(tmp_path / "s")
    for home in (by_workers, by_spark):
        ingest(spark, home, *crawl)
    for contract in (silver.DOCUMENTS, silver.SIGNALS_HEURISTIC):
        name = tables.ensure_table(spark, JobConfig(home=by_spark), contract)
        spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
        assert not tables.python_files(spark, JobConfig(home=by_spark), contract)
    expected, spark_silver = jobs(by_spark), silver_of(by_spark)

    got = jobs(by_workers)
    assert got == expected and got[0]["rows_out_documents"] == got[1]["rows_out_signals"] > 150
    assert got[0]["rows_out_with_text"] + got[0]["rows_out_no_main_text"] + got[0]["rows_out_extract_errors"] == \
        got[0]["rows_out_documents"] and got[0]["rows_out_with_text"] > 0 and got[0]["rows_out_no_main_text"] > 0
    assert silver_of(by_workers) == spark_silver and spark_silver[0][0] == got[0]["rows_out_documents"]
    docs_adds, signal_adds = _silver_adds(by_workers, "documents"), _silver_adds(by_workers, "signals_heuristic")
    files = [f"{by_workers}/silver/documents/{a['path']}" for a in docs_adds]
    files += [f"{by_workers}/silver/signals_heuristic/{a['path']}" for a in signal_adds]
    assert files and all(pq.ParquetFile(f).metadata.created_by.startswith("parquet-cpp-arrow") for f in files)
    assert {a["partitionValues"]["crawl"] for a in signal_adds} == set(got[0]["crawls"]) >= {"CC-MAIN-2099-01"}
    # statistics Delta skips on: the documents' stats columns (not the text); the signals' doc_id only
    assert {k for a in signal_adds for k in json.loads(a["stats"])["minValues"]} == {"doc_id"}
    assert not {"text", "title"} & {k for a in docs_adds for k in json.loads(a["stats"])["minValues"]}
    one = spark.table("silver.documents").agg(F.max("doc_id")).first()[0]
    assert len(spark.table("silver.documents").where(F.col("doc_id") == one).inputFiles()) == 1

    # one crawl: a file ingested again under a new crawl id, and only that crawl extracted
    for home in (by_spark, by_workers):
        ingest(spark, home, crawl[1], force=True, crawl="CC-MAIN-2099-02")
        assert jobs(home, crawls=("CC-MAIN-2099-02",))[1]["rows_out_signals"] > 0
    assert silver_of(by_workers) == silver_of(by_spark)
    kept = spark.table("silver.documents").where("crawl = 'CC-MAIN-2099-01'").count()
    assert kept == spark.table("silver.signals_heuristic").where("crawl = 'CC-MAIN-2099-01'").count() > 0
    # every crawl: heuristics replaces the whole table
    for home in (by_spark, by_workers):
        assert jobs(home)[1]["rows_out_signals"] == spark_silver[0][0] + kept
    assert silver_of(by_workers) == silver_of(by_spark)


def test_file_writer_gathers_batches_into_row_groups(tmp_path, monkeypatch):
    """Small batches (extract and heuristics make 256 rows at a time) go into row groups of about
    ROW_GROUP_BYTES, and the statistics still count and bound every row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs.runtime import datafiles

    schema = pa.schema([("doc_id", pa.string(), False), ("n", pa.int64())])
    spec = datafiles.WriteSpec(location=str(tmp_path), columns=("doc_id", "n"), schema=schema,
                               partition_by=("crawl",), stats_columns=("doc_id", "n"), compression="zstd",
                               compression_level=None, no_dictionary=(), no_statistics=())

    def write(batches: int) -> list[dict]:
        writer = datafiles.FileWriter(spec)
        for b in range(batches):
            ids = [f"id-{b:03d}-{i:03d}" for i in range(100)]
            writer.write(pa.RecordBatch.from_pydict(
                {"doc_id": ids, "n": list(range(b * 100, b * 100 + 100)), "crawl": ["C"] * 100}))
        return [json.loads(a)["add"] for a in writer.close()]

    adds = write(10)
    assert len(adds) == 1 and adds[0]["partitionValues"] == {"crawl": "C"}
    meta = pq.ParquetFile(tmp_path / adds[0]["path"]).metadata
    assert (meta.num_row_groups, meta.num_rows) == (1, 1000)
    stats = json.loads(adds[0]["stats"])
    assert stats["numRecords"] == 1000 and stats["minValues"] == {"doc_id": "id-000-000", "n": 0}
    assert stats["maxValues"] == {"doc_id": "id-009-099", "n": 999}

    monkeypatch.setattr(datafiles, "ROW_GROUP_BYTES", 2500)     # about two batches
    adds = write(5)
    meta = pq.ParquetFile(tmp_path / adds[0]["path"]).metadata
    assert meta.num_rows == 500 and 2 <= meta.num_row_groups < 5
    assert pq.read_table(tmp_path / adds[0]["path"]).column("n").to_pylist() == list(range(500))
