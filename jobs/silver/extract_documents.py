"""Silver: HTML responses -> documents (main text, title, language).

Reads   bronze.warc_records     (the crawls asked for; every crawl in bronze by default)
Writes  silver.documents        (replaces those crawls' partitions in one commit)
Re-run  idempotent per crawl: the same bronze version and config give the same rows.
Non-HTML responses are counted, not stored. A page that cannot be extracted is still a document, with
empty text and its extract_error: silver never drops a document.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from jobs.runtime import tables
from jobs.runtime.config import JobConfig
from jobs.runtime.spark import one_task_each
from jobs.runtime.tracking import job_run
from schemas import bronze, silver
from udfs.extract import EXTRACTORS, extractor_version
from udfs.lang import MAX_CHARS as LANGID_MAX_CHARS

RECORD_COLUMNS = ("record_id", "crawl", "target_uri", "warc_date", "declared_charset", "content_encoding",
                  "transfer_encoding", "payload", "source_file", "source_offset")


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    crawls: tuple[str, ...] = ()            # empty: every crawl in bronze.warc_records
    extractor: str = "resiliparse"
    langid_max_chars: int = LANGID_MAX_CHARS    # language ID reads at most the first this-many characters

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.extractor not in EXTRACTORS:
            raise ValueError(f"unknown extractor {self.extractor!r}; choose one of {', '.join(EXTRACTORS)}")
        if self.langid_max_chars <= 0:
            raise ValueError("langid_max_chars must be positive")


BATCH_ROWS = 256       # pages per Arrow batch, as spark.sql.execution.arrow.maxRecordsPerBatch (runtime/spark.py)


def _extractor(cfg: Config):
    """The Python side of both inputs: batches of bronze HTML records -> batches of documents."""
    extractor, label, max_chars = cfg.extractor, extractor_version(cfg.extractor), cfg.langid_max_chars
    schema = silver.DOCUMENTS.schema

    def extract(batches):
        import pyarrow as pa

        from jobs.runtime.arrow import arrow_schema
        from udfs.extract import documents_from_records

        out_schema = arrow_schema(schema)
        for batch in batches:
            if batch.num_rows:
                yield pa.RecordBatch.from_pydict(
                    documents_from_records(batch, extractor, label, max_chars), schema=out_schema)

    return extract


def transform(records: DataFrame, cfg: Config) -> DataFrame:
    """Bronze records (any columns of the contract) -> documents, one per HTML response."""
    return records.where(F.col("is_html")).select(*RECORD_COLUMNS).mapInArrow(_extractor(cfg), silver.DOCUMENTS.schema)


def transform_files(files: DataFrame, cfg: Config) -> DataFrame:
    """Bronze data files (rows of local `path` and its `crawl`) -> documents, one per HTML response. The
    Python workers read the Parquet files themselves, so the pages skip the JVM->Python copy of
    `transform` (on 1.1 GB of real HTML the JVM's share of extract fell from ~17 to 4-8 CPU-seconds,
    bench/throughput.py). Only for tables tables.python_files() accepts."""
    extract = _extractor(cfg)
    stored = [c for c in RECORD_COLUMNS if c not in bronze.WARC_RECORDS.partition_by] + ["is_html"]
    fields = {f.name: f for f in bronze.WARC_RECORDS.schema.fields}

    def read(batches):
        import pyarrow as pa
        import pyarrow.compute as pc

        from jobs.runtime.arrow import arrow_schema, read_parquet

        schema = arrow_schema(StructType([fields[c] for c in stored]))
        for batch in batches:
            for path, crawl in zip(batch.column("path").to_pylist(), batch.column("crawl").to_pylist()):
                for records in read_parquet(path, schema, BATCH_ROWS):
                    is_html = records.column("is_html")
                    html = records if pc.all(is_html).as_py() else records.filter(is_html)   # no copy when all are
                    if html.num_rows:
                        yield html.append_column("crawl", pa.array([crawl] * html.num_rows, pa.string()))

    return files.mapInArrow(lambda batches: extract(read(batches)), silver.DOCUMENTS.schema)


def run(spark: SparkSession, cfg: Config) -> dict:
    with job_run(cfg, "extract_documents") as tracked:
        version = tables.table_version(spark, cfg, bronze.WARC_RECORDS)
        tracked.table_read(bronze.WARC_RECORDS.fullname, version)
        records = tables.read_table(spark, cfg, bronze.WARC_RECORDS, version)
        if cfg.crawls:
            records = records.where(F.col("crawl").isin(sorted(cfg.crawls)))
        # The data files to read, with their crawl and counts in (from two small columns, not the pages).
        files = (records.groupBy(F.col("_metadata.file_path").alias("path"), "crawl")
                 .agg(F.count(F.lit(1)).alias("responses"), F.count_if(F.col("is_html")).alias("html")).collect())
        crawls = sorted(cfg.crawls) if cfg.crawls else sorted({f.crawl for f in files})
        responses, html = sum(f.responses for f in files), sum(f.html for f in files)
        if tables.python_files(spark, cfg, bronze.WARC_RECORDS):
            todo = [(tables.local_path(f.path), f.crawl) for f in files if f.html]
            documents = transform_files(one_task_each(spark, todo, "path string, crawl string"), cfg)
        else:
            documents = transform(records, cfg)
        # Counts out are observed during the one write, not recomputed afterwards.
        seen_out = Observation("documents")
        documents = documents.observe(
            seen_out, F.count(F.lit(1)).alias("documents"),
            F.count_if(F.col("extract_error").isNull() & (F.col("char_count") > 0)).alias("with_text"),
            F.count_if(F.col("extract_error").isNull() & (F.col("char_count") == 0)).alias("no_main_text"),
            F.count_if(F.col("extract_error").isNotNull()).alias("extract_errors"))
        written = tables.replace_where(documents, cfg, silver.DOCUMENTS, tables.in_list("crawl", crawls))
        tracked.table_written(silver.DOCUMENTS.fullname, written)
        d = seen_out.get
        counts = {
            "rows_in_responses": responses, "rows_in_html": html,
            "rows_skipped_non_html": responses - html, "rows_out_documents": d["documents"],
            "rows_out_with_text": d["with_text"], "rows_out_no_main_text": d["no_main_text"],
            "rows_out_extract_errors": d["extract_errors"],
        }
        tracked.metrics(**counts)
        return {"run_id": tracked.run_id, "crawls": crawls, **counts}
