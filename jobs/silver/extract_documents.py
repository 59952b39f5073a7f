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

from jobs.runtime import tables
from jobs.runtime.config import JobConfig
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
    langid_max_chars: int = LANGID_MAX_CHARS    # language ID reads the first this-many characters

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.extractor not in EXTRACTORS:
            raise ValueError(f"unknown extractor {self.extractor!r}; choose one of {', '.join(EXTRACTORS)}")
        if self.langid_max_chars <= 0:
            raise ValueError("langid_max_chars must be positive")


def transform(records: DataFrame, cfg: Config) -> DataFrame:
    """Bronze records (any columns of the contract) -> documents, one per HTML response."""
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

    return records.where(F.col("is_html")).select(*RECORD_COLUMNS).mapInArrow(extract, schema)


def run(spark: SparkSession, cfg: Config) -> dict:
    with job_run(cfg, "extract_documents") as tracked:
        version = tables.table_version(spark, cfg, bronze.WARC_RECORDS)
        tracked.table_read(bronze.WARC_RECORDS.fullname, version)
        records = tables.read_table(spark, cfg, bronze.WARC_RECORDS, version)
        crawls = sorted(cfg.crawls) if cfg.crawls else sorted(r.crawl for r in records.select("crawl").distinct().collect())
        # Counts in and out are observed during the one write, not recomputed afterwards.
        seen_in, seen_out = Observation("records"), Observation("documents")
        records = records.where(F.col("crawl").isin(crawls)).observe(
            seen_in, F.count(F.lit(1)).alias("responses"), F.count_if(F.col("is_html")).alias("html"))
        documents = transform(records, cfg).observe(
            seen_out, F.count(F.lit(1)).alias("documents"),
            F.count_if(F.col("extract_error").isNull() & (F.col("char_count") > 0)).alias("with_text"),
            F.count_if(F.col("extract_error").isNull() & (F.col("char_count") == 0)).alias("no_main_text"),
            F.count_if(F.col("extract_error").isNotNull()).alias("extract_errors"))
        written = tables.replace_where(documents, cfg, silver.DOCUMENTS, tables.in_list("crawl", crawls))
        tracked.table_written(silver.DOCUMENTS.fullname, written)
        r, d = seen_in.get, seen_out.get
        counts = {
            "rows_in_responses": r["responses"], "rows_in_html": r["html"],
            "rows_skipped_non_html": r["responses"] - r["html"], "rows_out_documents": d["documents"],
            "rows_out_with_text": d["with_text"], "rows_out_no_main_text": d["no_main_text"],
            "rows_out_extract_errors": d["extract_errors"],
        }
        tracked.metrics(**counts)
        return {"run_id": tracked.run_id, "crawls": crawls, **counts}
