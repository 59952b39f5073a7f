"""Bronze data files written by the Python workers and committed through Delta's transaction API
(jobs/runtime/datafiles.py): the same table as Spark's writer makes, statistics Delta can skip on, and
replacement that keeps other files' rows."""
from __future__ import annotations

import glob
import json
import threading
from datetime import datetime, timezone

import pytest

from jobs.bronze.sample_crawl import SampleCrawlSpec, write_sample_crawl
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
    return [a, b, shared_data / "warc" / "warcfile.warc.gz", shared_data / "warc" / "aut-example.arc.gz"]


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
