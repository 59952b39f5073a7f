"""Silver: HTML responses -> documents (main text, title, language).

Reads   bronze.warc_records     (the crawls asked for; every crawl in bronze by default)
Writes  silver.documents        (replaces those crawls' partitions in one commit)
Re-run  idempotent per crawl: the same bronze version and config give the same rows.
Non-HTML responses are counted, not stored. A page that cannot be extracted is still a document, with
empty text and its extract_error: silver never drops a document.
On a local lakehouse the workers read bronze's data files and write silver's themselves, and the driver
commits them (runtime/datafiles.py): neither the pages nor the texts pass through the JVM.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.datafiles import WriteSpec, written_schema
from jobs.runtime.spark import ARROW_BATCH_ROWS
from jobs.runtime.tracking import job_run
from schemas import bronze, silver
from udfs.extract import EXTRACTORS, extractor_version
from udfs.lang import MAX_CHARS as LANGID_MAX_CHARS

RECORD_COLUMNS = ("record_id", "crawl", "target_uri", "warc_date", "declared_charset", "content_encoding",
                  "transfer_encoding", "payload", "source_file", "source_offset")


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    crawls: tuple[str, ...] = option((), "crawl to process (default: every crawl in bronze.warc_records)",
                                     flag="--crawl", repeat=True)
    extractor: str = option("resiliparse", "main-content extractor", choices=tuple(EXTRACTORS))
    langid_max_chars: int = option(LANGID_MAX_CHARS, "language ID reads at most the first this-many characters")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.extractor not in EXTRACTORS:
            raise ValueError(f"unknown extractor {self.extractor!r}; choose one of {', '.join(EXTRACTORS)}")
        if self.langid_max_chars <= 0:
            raise ValueError("langid_max_chars must be positive")




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


def transform_files(files: DataFrame, cfg: Config, write: WriteSpec | None = None) -> DataFrame:
    """Bronze data files (rows of local `path` and its `crawl`) -> documents, one per HTML response. The
    Python workers read the Parquet files themselves, so the pages skip the JVM->Python copy of
    `transform` (on 1.1 GB of real HTML the JVM's share of extract fell from ~17 to 4-8 CPU-seconds,
    bench/throughput.py). With a WriteSpec the workers also write silver.documents' data files, and each
    task returns one row of datafiles.written_schema() instead of its documents. Only for tables
    tables.python_files() accepts."""
    extract = _extractor(cfg)
    stored = [c for c in RECORD_COLUMNS if c not in bronze.WARC_RECORDS.partition_by] + ["is_html"]
    fields = {f.name: f for f in bronze.WARC_RECORDS.schema.fields}

    def documents(batches):
        import pyarrow.compute as pc

        from jobs.runtime.arrow import arrow_schema, read_data_files

        schema = arrow_schema(StructType([fields[c] for c in stored]))
        for records in read_data_files(batches, schema, ARROW_BATCH_ROWS):
            html = records if pc.all(records.column("is_html")).as_py() else records.filter(records.column("is_html"))
            if html.num_rows:
                yield html.drop_columns(["is_html"])

    if write is None:
        return files.mapInArrow(lambda batches: extract(documents(batches)), silver.DOCUMENTS.schema)

    def extract_and_write(batches):
        from jobs.runtime.datafiles import write_task

        yield from write_task(write, extract(documents(batches)), outcome_counts)

    return files.mapInArrow(extract_and_write, written_schema())


def outcome_counts(docs) -> dict[str, int]:
    """Documents of a batch by outcome: with text, without main text, extraction failed."""
    import pyarrow.compute as pc

    failed = pc.is_valid(docs.column("extract_error"))
    empty = pc.equal(docs.column("char_count"), 0)
    n_failed = pc.sum(failed.cast("int64")).as_py() or 0
    n_empty = pc.sum(pc.and_(pc.invert(failed), empty).cast("int64")).as_py() or 0
    return {"documents": docs.num_rows, "with_text": docs.num_rows - n_failed - n_empty,
            "no_main_text": n_empty, "extract_errors": n_failed}


def run(spark: SparkSession, cfg: Config) -> dict:
    with job_run(cfg, "extract_documents") as tracked:
        version = tables.table_version(spark, cfg, bronze.WARC_RECORDS)
        tracked.table_read(bronze.WARC_RECORDS.fullname, version)
        records = tables.read_table(spark, cfg, bronze.WARC_RECORDS, version)
        if cfg.crawls:
            records = records.where(F.col("crawl").isin(sorted(cfg.crawls)))
        files = tables.file_counts(records, responses=F.count(F.lit(1)), html=F.count_if(F.col("is_html")))
        crawls = sorted(cfg.crawls) if cfg.crawls else sorted({f.crawl for f in files})
        responses, html = sum(f.responses for f in files), sum(f.html for f in files)
        if tables.python_files(spark, cfg, bronze.WARC_RECORDS) and tables.python_files(spark, cfg, silver.DOCUMENTS):
            written, d = tables.write_from_files(spark, cfg, silver.DOCUMENTS, [f for f in files if f.html],
                                                 lambda todo, spec: transform_files(todo, cfg, spec), crawls)
        else:
            # Counts out are observed during the one write, not recomputed afterwards.
            seen_out = Observation("documents")
            documents = transform(records, cfg).observe(
                seen_out, F.count(F.lit(1)).alias("documents"),
                F.count_if(F.col("extract_error").isNull() & (F.col("char_count") > 0)).alias("with_text"),
                F.count_if(F.col("extract_error").isNull() & (F.col("char_count") == 0)).alias("no_main_text"),
                F.count_if(F.col("extract_error").isNotNull()).alias("extract_errors"))
            written = tables.replace_where(documents, cfg, silver.DOCUMENTS, tables.in_list("crawl", crawls))
            d = seen_out.get
        tracked.table_written(silver.DOCUMENTS.fullname, written)
        counts = {
            "rows_in_responses": responses, "rows_in_html": html,
            "rows_skipped_non_html": responses - html, "rows_out_documents": d.get("documents", 0),
            "rows_out_with_text": d.get("with_text", 0), "rows_out_no_main_text": d.get("no_main_text", 0),
            "rows_out_extract_errors": d.get("extract_errors", 0),
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
