"""Silver: HTML responses -> documents (main text, title, language).

Reads   bronze.warc_records     (the crawls asked for; every crawl in bronze by default)
Writes  silver.documents        (replaces those crawls' partitions in one commit)
Re-run  idempotent per crawl: the same bronze version and config give the same rows.
Non-HTML responses are counted, not stored. A page that cannot be extracted is still a document, with
empty text and its extract_error: silver never drops a document.
The extraction is a kernel over Arrow batches; the runtime's tables.rewrite decides how it reads bronze
and writes silver (on a local lakehouse, in the Python workers: the pages never pass through the JVM).
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.tracking import job_run
from schemas import bronze, silver
from udfs.extract import DEFAULT_EXTRACTOR, EXTRACTORS, extractor_version
from udfs.lang import MAX_CHARS as LANGID_MAX_CHARS

RECORD_COLUMNS = ("record_id", "crawl", "target_uri", "warc_date", "declared_charset", "content_encoding",
                  "transfer_encoding", "payload", "source_file", "source_offset")


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    crawls: tuple[str, ...] = option((), "crawl to process (default: every crawl in bronze.warc_records)",
                                     flag="--crawl", repeat=True)
    extractor: str = option(DEFAULT_EXTRACTOR, "main-content extractor", choices=tuple(EXTRACTORS))
    langid_max_chars: int = option(LANGID_MAX_CHARS, "language ID reads at most the first this-many characters")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.extractor not in EXTRACTORS:
            raise ValueError(f"unknown extractor {self.extractor!r}; choose one of {', '.join(EXTRACTORS)}")
        if self.langid_max_chars <= 0:
            raise ValueError("langid_max_chars must be positive")




def kernel(cfg: Config):
    """Batches of bronze records (RECORD_COLUMNS and is_html, any order) -> batches of documents, one per HTML
    response: what tables.rewrite runs in the Python workers."""
    extractor, label, max_chars = cfg.extractor, extractor_version(cfg.extractor), cfg.langid_max_chars
    schema = silver.DOCUMENTS.schema

    def extract(batches, side):
        import pyarrow as pa
        import pyarrow.compute as pc

        from jobs.runtime.arrow import arrow_schema
        from udfs.extract import documents_from_records

        out_schema = arrow_schema(schema)
        for batch in batches:
            html = batch if pc.all(batch.column("is_html")).as_py() else batch.filter(batch.column("is_html"))
            if html.num_rows:
                yield pa.RecordBatch.from_pydict(
                    documents_from_records(html, extractor, label, max_chars), schema=out_schema)

    return extract


def transform(records: DataFrame, cfg: Config) -> DataFrame:
    """Bronze records (any columns of the contract) -> documents, one per HTML response (the kernel on Spark)."""
    extract = kernel(cfg)
    return records.select(*RECORD_COLUMNS, "is_html").mapInArrow(lambda batches: extract(batches, []),
                                                                 silver.DOCUMENTS.schema)


OUTCOMES = {"documents": "count(1)", "with_text": "count_if(extract_error IS NULL AND char_count > 0)",
            "no_main_text": "count_if(extract_error IS NULL AND char_count = 0)",
            "extract_errors": "count_if(extract_error IS NOT NULL)"}


def run(spark: SparkSession, cfg: Config) -> dict:
    with job_run(cfg, "extract_documents", name="extract") as tracked:
        version = tables.table_version(spark, cfg, bronze.WARC_RECORDS)
        tracked.table_read(bronze.WARC_RECORDS.fullname, version)
        records = tables.read_table(spark, cfg, bronze.WARC_RECORDS, version)
        if cfg.crawls:
            records = records.where(F.col("crawl").isin(sorted(cfg.crawls)))
        files = tables.file_counts(records, responses=F.count(F.lit(1)), html=F.count_if(F.col("is_html")))
        crawls = sorted(cfg.crawls) if cfg.crawls else sorted({f.crawl for f in files})
        responses, html = sum(f.responses for f in files), sum(f.html for f in files)
        written, _ = tables.rewrite(spark, cfg, silver.DOCUMENTS, kernel(cfg), "crawl", crawls,
                                    rows=records, columns=(*RECORD_COLUMNS, "is_html"), source=bronze.WARC_RECORDS)
        tracked.table_written(silver.DOCUMENTS.fullname, written)
        d = tables.written_counts(spark, cfg, silver.DOCUMENTS, written, "crawl", crawls, OUTCOMES)
        counts = {
            "rows_in_responses": responses, "rows_in_html": html,
            "rows_skipped_non_html": responses - html, "rows_out_documents": d["documents"],
            "rows_out_with_text": d["with_text"], "rows_out_no_main_text": d["no_main_text"],
            "rows_out_extract_errors": d["extract_errors"],
        }
        tracked.metrics(**counts)
        return {"run_id": tracked.run_id, "crawls": crawls, **counts}


def run_stage(spark: SparkSession, cfg: Config, progress) -> dict:
    """The extract stage: documents, then their heuristic signals."""
    from jobs.silver import compute_heuristics

    progress("documents …")
    docs = run(spark, cfg)
    progress("heuristic signals …")
    sig = compute_heuristics.run(spark, compute_heuristics.Config(**cfg.location(), crawls=tuple(docs["crawls"])))
    return {**docs, "heuristics_run_id": sig["run_id"], "rows_out_signals": sig["rows_out_signals"]}


def report(s: dict) -> Report:
    return Report(s["rows_in_html"], s["rows_out_documents"],
                  f"{s['rows_out_documents']} documents ({s['rows_out_with_text']} with text, {s['rows_out_extract_errors']} "
                  f"extract errors, {s['rows_skipped_non_html']} non-HTML skipped) in crawls "
                  f"{', '.join(s['crawls']) or '-'}; {s['rows_out_signals']} heuristic signal rows")


STAGE = Stage("extract", "bronze.warc_records -> silver.documents and silver.signals_heuristic", Config, run_stage,
              reads=(bronze.WARC_RECORDS.fullname,),
              writes=(silver.DOCUMENTS.fullname, silver.SIGNALS_HEURISTIC.fullname), report=report)
