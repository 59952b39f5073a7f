"""Bronze and silver jobs on a local SparkSession: contracts, reconciliation, idempotency, bad input."""
from __future__ import annotations


import pytest
from pyspark.sql import functions as F

from jobs.bronze import ingest_warc
from jobs.runtime import tables
from jobs.runtime.config import JobConfig
from jobs.runtime.tracking import client_and_experiment
from jobs.silver import compute_heuristics, extract_documents
from schemas import bronze, silver
from tests.conftest import gz_record, http_response

pytestmark = pytest.mark.filterwarnings("ignore")


def checksum(df) -> tuple[int, int]:
    """(rows, order-independent hash of every column): equal tables give equal checksums."""
    row = df.agg(F.count(F.lit(1)).alias("n"), F.sum(F.xxhash64(*df.columns).cast("decimal(38,0)")).alias("h")).first()
    return int(row.n), int(row.h or 0)


def columns_and_types(df) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in df.schema.fields]


def ingest(spark, home, *inputs, **kw):
    return ingest_warc.run(spark, ingest_warc.Config(home=home, inputs=tuple(map(str, inputs)), **kw))


def extract(spark, home, **kw):
    docs = extract_documents.run(spark, extract_documents.Config(home=home, **kw))
    sig = compute_heuristics.run(spark, compute_heuristics.Config(home=home, crawls=tuple(docs["crawls"])))
    return docs, sig


# ------------------------------------------------------------------------------------------- contracts

def test_transforms_write_exactly_their_contracts(spark, home, tmp_path):
    warc = tmp_path / "one.warc.gz"
    warc.write_bytes(gz_record("urn:uuid:1", http_response(b"<html><p>Hello there, this is a page.</p></html>")))
    cfg = ingest_warc.Config(home=home, inputs=(str(warc),))
    records = tables.conform(ingest_warc.transform(tables.one_task_each(spark, [(str(warc),)], "path string"), cfg),
                             bronze.WARC_RECORDS)
    assert columns_and_types(records) == bronze.WARC_RECORDS.columns_and_types() and records.count() == 1

    docs = extract_documents.transform(records, extract_documents.Config(home=home))
    assert columns_and_types(docs) == silver.DOCUMENTS.columns_and_types()
    row = docs.first()
    assert row.doc_id == "urn:uuid:1" and row.text == "Hello there, this is a page." and row.word_count == 6

    sig = compute_heuristics.transform(docs, compute_heuristics.Config(home=home))
    assert columns_and_types(sig) == silver.SIGNALS_HEURISTIC.columns_and_types()
    first = sig.first()
    assert first.heuristics_v2.word_count == 6 and first.heuristics_v2.token_count == 8 and first.heuristics_v1 is None


@pytest.mark.slow                     # a Delta table written twice and evolved: about 20 s
def test_a_table_of_heuristics_v1_is_evolved_and_its_rows_stay_readable(spark, home):
    """A lakehouse written before heuristics_v2 (one NOT NULL heuristics_v1 column): the next job adds the
    v2 column, its old rows keep their v1 values (v2 NULL), and new rows get v2."""
    from pyspark.sql.types import StructType

    from jobs.runtime.tables import table_location
    from udfs import heuristics as H

    v1 = silver.HEURISTICS_V1_STRUCT
    old_schema = StructType().add("doc_id", "string", False).add("crawl", "string", False).add("heuristics_v1", v1, False)
    location = table_location(JobConfig(home=home), "silver", "signals_heuristic")
    values = tuple(0 if t == "int" else 0.0 if t == "double" else False if t == "boolean" else None for _, t in H.V1_FIELDS)
    spark.sql(f"CREATE TABLE delta.`{location}` (doc_id STRING NOT NULL, crawl STRING NOT NULL, "
              f"heuristics_v1 {v1.simpleString()} NOT NULL) USING delta PARTITIONED BY (crawl)")
    spark.createDataFrame([("old-doc", "C0", values)], old_schema).write.format("delta").mode("append").save(location)

    tables.ensure_table(spark, JobConfig(home=home), silver.SIGNALS_HEURISTIC)
    table = spark.table("silver.signals_heuristic")
    assert [f.name for f in table.schema.fields] == ["doc_id", "crawl", "heuristics_v1", "heuristics_v2"]
    assert all(f.nullable for f in table.schema.fields[2:])
    old = table.where("doc_id = 'old-doc'").first()
    assert old.heuristics_v1.word_count == 0 and old.heuristics_v2 is None
    docs = spark.createDataFrame([("new-doc", "C1", "A short page of text.", "https://e.example/")],
                                 "doc_id string, crawl string, text string, url string")
    signals = compute_heuristics.transform(docs, compute_heuristics.Config(home=home))
    tables.replace_where(signals, JobConfig(home=home), silver.SIGNALS_HEURISTIC, tables.crawl_scope(["C1"]))
    rows = {r.doc_id: r for r in spark.table("silver.signals_heuristic").collect()}
    assert rows["new-doc"].heuristics_v2.token_count == 6 and rows["new-doc"].heuristics_v1 is None
    assert rows["old-doc"].heuristics_v1 is not None


def test_conform_rejects_missing_and_extra_columns(spark):
    df = spark.createDataFrame([("a", 1)], "doc_id string, extra int")
    with pytest.raises(ValueError, match="missing .*crawl.*extra \\['extra'\\]"):
        tables.conform(df, silver.SIGNALS_HEURISTIC)


def test_the_version_a_write_returns_is_its_own_commit_when_another_follows(spark, home):
    """Versions are read from the local _delta_log here (tables._commit); written_version is the DESCRIBE
    HISTORY lookup catalog and remote tables use."""
    cfg, contract, name = JobConfig(home=home), bronze.INGEST_ERRORS, bronze.INGEST_ERRORS.fullname
    row = ("a.warc.gz", 0, None, "CorruptBytes", "first")
    first = tables.append(spark.createDataFrame([row], contract.schema), cfg, contract)
    later = tables.replace_where(spark.createDataFrame([("b.warc.gz", *row[1:])], contract.schema), cfg, contract,
                                 "source_file = 'b.warc.gz'")
    assert later == first + 1
    tags = {r.version: r.userMetadata for r in spark.sql(f"DESCRIBE HISTORY {name}").collect()}
    assert tags[first] != tags[later] and all(tags[v].startswith("lakesift-write-") for v in (first, later))
    # looked up after the other commit landed, the first write's tag still names the first write's version
    assert tables.written_version(spark, name, tags[first], before=first - 1) == first
    assert [r.source_file for r in tables.read_table(spark, cfg, contract, first).collect()] == ["a.warc.gz"]
    # a write that changes nothing makes no commit (Delta skips empty commits): the version before it holds its result
    empty = spark.createDataFrame([], contract.schema)
    assert tables.replace_where(empty, cfg, contract, "source_file = 'c.warc.gz'") == later
    assert tables.latest_version(spark, name) == later
    # on a local lakehouse the versions come from the _delta_log folder: they agree with DESCRIBE HISTORY
    assert tables.table_version(spark, cfg, contract) == later
    assert tables.last_commit(cfg, contract.layer, contract.name)[0] == later


# ---------------------------------------------------------------------------------------- real files

@pytest.mark.slow
def test_real_files_reconcile_per_file(spark, home, shared_data):
    """Every file ingests in one run; per file: responses = documents + non-HTML skipped + unreadable."""
    summary = ingest(spark, home, shared_data / "warc")
    per_file = {k.rsplit("/", 1)[-1]: v for k, v in summary["per_file"].items()}
    assert per_file["clipped.warc.gz"] == {"responses": 0, "html": 0, "non_html": 0, "non_http_skipped": 0, "errors": 1,
                                           "duplicate_records": 0}
    assert per_file["aut-example.warc.gz"]["responses"] == 261 and per_file["aut-example.arc.gz"]["html"] == 140
    assert per_file["warcfile.warc.gz"]["responses"] == 16 and per_file["whirlwind.warc.gz"]["html"] == 1
    errors = spark.sql("SELECT source_file, error_class FROM bronze.ingest_errors").collect()
    assert [(r.source_file.rsplit("/", 1)[-1], r.error_class) for r in errors] == [("clipped.warc.gz", "TruncatedRecord")]

    extract(spark, home)
    recon = spark.sql("""
        WITH docs AS (SELECT source_file, count(*) AS documents FROM silver.documents GROUP BY 1),
             recs AS (SELECT source_file, count(*) AS responses, count_if(NOT is_html) AS non_html
                      FROM bronze.warc_records GROUP BY 1),
             errs AS (SELECT source_file, count(*) AS unreadable FROM bronze.ingest_errors GROUP BY 1)
        SELECT f.source_file, coalesce(r.responses, 0) + coalesce(e.unreadable, 0) AS responses_in_file,
               coalesce(d.documents, 0) AS documents, coalesce(r.non_html, 0) AS non_html,
               coalesce(e.unreadable, 0) AS unreadable
        FROM (SELECT source_file FROM recs UNION SELECT source_file FROM errs) f
        LEFT JOIN recs r USING (source_file) LEFT JOIN docs d USING (source_file) LEFT JOIN errs e USING (source_file)
    """).collect()
    assert len(recon) == 8          # every file but the WET/WAT, which hold no responses
    for r in recon:
        assert r.responses_in_file == r.documents + r.non_html + r.unreadable, r
        expected = summary["per_file"][r.source_file]
        assert r.responses_in_file == expected["responses"] + expected["errors"]


@pytest.mark.slow
def test_reingest_adds_nothing_and_force_replaces(spark, home, shared_data):
    warcs = [shared_data / "warc" / n for n in ("warcfile.warc.gz", "whirlwind.warc.gz")]
    first = ingest(spark, home, *warcs)
    before = checksum(spark.table("bronze.warc_records"))
    again = ingest(spark, home, *warcs)
    assert again["files_already_ingested"] == 2 and again["files_read"] == 0
    assert checksum(spark.table("bronze.warc_records")) == before == (17, before[1])
    forced = ingest(spark, home, *warcs, force=True)
    assert forced["files_read"] == 2 and checksum(spark.table("bronze.warc_records")) == before
    assert first["responses"] == forced["responses"] == 17


def test_mlflow_run_records_config_counts_and_versions(spark, home, shared_data):
    summary = ingest(spark, home, shared_data / "warc" / "warcfile.warc.gz")
    client, _ = client_and_experiment(ingest_warc.Config(home=home, inputs=("x",)))
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["inputs"].endswith("warcfile.warc.gz") and run.data.params["max_payload_bytes"] == str(5 * 1024 * 1024)
    assert run.data.metrics["rows_responses"] == 16 and run.data.metrics["rows_html"] == 16
    assert run.data.metrics["seconds"] > 0
    assert run.data.params["wrote.bronze.warc_records"] == str(tables.table_version(spark, ingest_warc.Config(home=home, inputs=("x",)), bronze.WARC_RECORDS))


@pytest.mark.slow          # ingest and extract twice: in the slow tier with the other determinism checks
def test_extract_is_deterministic(spark, home, shared_data):
    ingest(spark, home, shared_data / "warc" / "warcfile.warc.gz", shared_data / "warc" / "sample-0000.warc.gz")
    extract(spark, home)
    first = checksum(spark.table("silver.documents")), checksum(spark.table("silver.signals_heuristic"))
    extract(spark, home)
    assert (checksum(spark.table("silver.documents")), checksum(spark.table("silver.signals_heuristic"))) == first
    assert first[0][0] == 38


def test_failed_job_marks_its_run_failed(spark, home):
    cfg = extract_documents.Config(home=home, crawls=("x",))
    client, exp = client_and_experiment(cfg)
    with pytest.raises(RuntimeError):
        from jobs.runtime.tracking import job_run
        with job_run(cfg, "boom"):
            raise RuntimeError("stop")
    (run,) = client.search_runs([exp], "tags.`lakesift.job` = 'boom'")
    assert run.info.status == "FAILED" and "stop" in run.data.tags["lakesift.error"]


# ------------------------------------------------------------------------------------ reading bronze

@pytest.mark.slow
def test_python_workers_reading_bronze_files_give_the_spark_path_rows(spark, home, tmp_path, monkeypatch):
    """extract reads a local bronze table's Parquet files in the Python workers; the documents must be
    exactly those of the Spark read, and a table with deletion vectors must go through Spark."""
    from jobs.demo.sample_crawl import SampleCrawlSpec, write_sample_crawl

    write_sample_crawl(tmp_path / "a.warc.gz", SampleCrawlSpec(pages=14, seed=3))
    write_sample_crawl(tmp_path / "b.warc.gz", SampleCrawlSpec(pages=10, seed=4))
    ingest(spark, home, tmp_path / "a.warc.gz", tmp_path / "b.warc.gz")
    cfg = extract_documents.Config(home=home)
    assert tables.python_files(spark, cfg, bronze.WARC_RECORDS)
    with monkeypatch.context() as m:
        m.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")
        assert not tables.python_files(spark, cfg, bronze.WARC_RECORDS)
    records = tables.read_table(spark, cfg, bronze.WARC_RECORDS)
    n_html, expected = records.where("is_html").count(), checksum(extract_documents.transform(records, cfg))
    assert expected[0] == n_html > 15

    summary = extract_documents.run(spark, cfg)
    assert summary["rows_out_documents"] == summary["rows_in_html"] == n_html
    assert summary["rows_in_responses"] == records.count() > n_html
    assert checksum(spark.table("silver.documents")) == expected

    spark.sql("ALTER TABLE bronze.warc_records SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    assert not tables.python_files(spark, cfg, bronze.WARC_RECORDS)
    spark.sql("DELETE FROM bronze.warc_records WHERE source_file LIKE '%/b.warc.gz'")
    again = extract_documents.run(spark, cfg)
    assert again["rows_out_documents"] == records.where("is_html").count() < n_html
    assert spark.table("silver.documents").where("source_file LIKE '%/b.warc.gz'").count() == 0


def test_two_model_files_of_the_same_name_both_reach_the_executors(spark, tmp_path):
    """Spark keeps one shipped file per name for a whole session; two different model.bin files (two
    classify runs in one notebook) must not collide."""
    from udfs.shipped import local_path, ship

    refs = []
    for i in (1, 2):
        (tmp_path / f"m{i}").mkdir()
        (tmp_path / f"m{i}" / "model.bin").write_bytes(b"model %d" % i)
        refs.append(ship(spark, str(tmp_path / f"m{i}" / "model.bin")))
    assert refs[0] != refs[1] and ship(spark, str(tmp_path / "m1" / "model.bin")) == refs[0]
    read = spark.sparkContext.parallelize(refs, 2).map(lambda ref: open(local_path(ref), "rb").read()).collect()
    assert read == [b"model 1", b"model 2"]
