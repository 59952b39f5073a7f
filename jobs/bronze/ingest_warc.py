"""Bronze: WARC/ARC files -> one row per HTTP response record, and a row for everything unreadable.

Reads   crawl files: local paths, directories (recursively), globs, s3:// https:// dbfs:/ URLs
Writes  bronze.warc_records   the responses of the files ingested
        bronze.ingest_errors  what could not be read: file, offset, error class, message
        bronze.ingest_files   one row per file: sha256 digest, counts, or the earlier file it copies
Re-run  a file already ingested is skipped and adds no rows; --force reads it again and replaces its
        rows in both tables (one atomic Delta commit per table).
Copies  a file is known by its content: symlinks are resolved, each file is hashed (sha256) as it is
        read, and one with the size of a file ingested before (or of another in this run) is hashed
        first: when its sha256 was ingested under another path, it is reported and not read. A record is known by
        its WARC-Record-ID: one already in bronze from another file is dropped (same payload) or becomes a
        DuplicateRecordId error row (another payload), so bronze never holds an id twice.
Reading is a kernel over batches of file paths; tables.rewrite decides how bronze is written (on a local
lakehouse the workers write the Parquet data files as they read: the pages never pass through the JVM).
"""
from __future__ import annotations

import glob
import os
import time
import uuid
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.tracking import inputs_named, job_run
from schemas import bronze
from udfs.warc import MAX_PAYLOAD_BYTES

COUNT_KEYS = ("responses", "html", "non_html", "non_http_skipped", "errors", "duplicate_records")
ARCHIVE_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")
DERIVED_SUFFIXES = (".wet.gz", ".wat.gz", ".wet", ".wat")   # Common Crawl's text/metadata files hold no responses


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    inputs: tuple[str, ...] = option(help="files, directories, globs or s3:// https:// dbfs:/ URLs",
                                     flag="--input", metavar="PATH")
    crawl: str | None = option(None, "crawl id for these files (default: warcinfo isPartOf, else CC-MAIN-* in "
                                     "the path)")
    max_payload_bytes: int = option(MAX_PAYLOAD_BYTES, "keep at most this many bytes of each body; longer ones are "
                                                     "flagged truncated")
    force: bool = option(False, "read files again that were already ingested (replaces their rows)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.inputs:
            raise ValueError("ingest needs at least one --input")
        if self.max_payload_bytes <= 0:
            raise ValueError("max_payload_bytes must be positive")


def expand_inputs(inputs: tuple[str, ...]) -> list[str]:
    """Files to read, in a stable order, symlinks resolved (a link and its target are one file).
    Directories are walked for WARC/ARC files (WET/WAT skipped); globs are expanded; a path that matches
    nothing is kept, so it becomes a FileNotFound error row."""
    out: list[str] = []
    for item in inputs:
        if "://" in item and not item.startswith("file://"):
            out.extend(_expand_remote(item))
            continue
        path = item[len("file://"):] if item.startswith("file://") else item
        if os.path.isdir(path):
            for root, _, files in os.walk(path):
                out.extend(
                    os.path.realpath(os.path.join(root, f)) for f in files
                    if f.endswith(ARCHIVE_SUFFIXES) and not f.endswith(DERIVED_SUFFIXES)
                )
        elif any(ch in path for ch in "*?["):
            out.extend(os.path.realpath(p) for p in glob.glob(path, recursive=True) if os.path.isfile(p))
        else:
            out.append(os.path.realpath(path))
    seen: set[str] = set()
    return [p for p in sorted(out) if not (p in seen or seen.add(p))]


def _expand_remote(url: str) -> list[str]:
    if not any(ch in url for ch in "*?["):
        return [url]
    import fsspec

    fs, _, paths = fsspec.get_fs_token_paths(url)
    protocol = url.split("://", 1)[0]
    return [p if "://" in p else f"{protocol}://{p}" for p in paths]


def with_file_summary(path: str, rows):
    """The reader's response and error rows, then one 'file' row counting them and the non-HTTP responses
    (which are only counted; the other record types, warcinfo, request, metadata…, are not responses).
    A record id seen before in the file is dropped (same payload) or an error row (another payload)."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    seen: dict[str, str] = {}
    identity = {"size_bytes": None, "file_digest": None}
    for row in rows:
        kind = row["kind"]
        if kind == "response":
            if row["record_id"] in seen:
                if seen[row["record_id"]] == row["payload_digest"]:
                    counts["duplicate_records"] += 1
                    continue
                row = {"kind": "error", "source_file": path, "source_offset": row["source_offset"],
                       "record_id": row["record_id"], "error_class": "DuplicateRecordId",
                       "message": "this WARC-Record-ID occurs earlier in the file with another payload"}
                counts["errors"] += 1
                yield row
                continue
            seen[row["record_id"]] = row["payload_digest"]
            counts["responses"] += 1
            counts["html" if row["is_html"] else "non_html"] += 1
            yield row
        elif kind == "error":
            counts["errors"] += 1
            yield row
        elif kind == "skipped":
            counts["non_http_skipped"] += 1
        elif kind == "digest":
            identity = {"size_bytes": row["size_bytes"], "file_digest": row["file_digest"]}
    yield {"kind": "file", "source_file": path, **identity, **{f"n_{k}": v for k, v in counts.items()}}


def kernel(cfg: Config):
    """Batches of crawl-file paths -> batches of bronze.warc_records rows (the responses); the errors and one
    summary row per file (with_file_summary) go to `side`: what tables.rewrite runs in the Python workers."""
    max_payload, crawl = cfg.max_payload_bytes, cfg.crawl

    def read_files(batches, side):
        from jobs.runtime.arrow import arrow_schema, batches as to_batches
        from udfs.warc import ReadOptions, read_archive

        records = arrow_schema(bronze.WARC_RECORDS.schema)
        opts = ReadOptions(max_payload_bytes=max_payload, crawl=crawl)
        for batch in batches:
            for path in batch.column("path").to_pylist():
                rows = with_file_summary(path, read_archive(path, opts))
                yield from to_batches(_responses(rows, side), records, max_rows=256, size_of=_payload_size)

    return read_files


def transform(files: DataFrame, cfg: Config) -> DataFrame:
    """Crawl files (a `path` column) -> bronze.warc_records rows (the kernel on Spark; side rows dropped)."""
    read = kernel(cfg)
    return files.mapInArrow(lambda batches: read(batches, []), bronze.WARC_RECORDS.schema)


def _payload_size(row: dict) -> int:
    return len(row.get("payload") or b"")


def _responses(rows, others: list):
    """The response rows of `rows`; every other row is appended to `others`."""
    for row in rows:
        if row["kind"] == "response":
            yield row
        else:
            others.append(row)


def earlier_rows(spark: SparkSession, cfg: Config, paths: list[str]) -> tuple[set[str], set[str]]:
    """(files already ingested, files with ingest_errors rows) among `paths`, from bronze.ingest_files: a
    file with a digest was read (or is a copy of one read); one that could not be opened has none and is
    read again next time (it may exist by then). A lakehouse older than ingest_files answers from its
    records and errors instead (a file with either, at a known offset, was ingested)."""
    files = tables.read_table(spark, cfg, bronze.INGEST_FILES)
    rows = (files.where(F.col("source_file").isin(paths))
            .select("source_file", F.col("file_digest").isNotNull().alias("ingested"),
                    ((F.col("errors") > 0) | F.col("file_digest").isNull()).alias("error")).collect())
    if not rows and not files.limit(1).collect():
        records = tables.read_table(spark, cfg, bronze.WARC_RECORDS).where(F.col("source_file").isin(paths))
        errors = tables.read_table(spark, cfg, bronze.INGEST_ERRORS).where(F.col("source_file").isin(paths))
        rows = (records.select("source_file", F.lit(True).alias("ingested"), F.lit(False).alias("error"))
                .unionByName(errors.select("source_file", F.col("source_offset").isNotNull().alias("ingested"),
                                           F.lit(True).alias("error")))
                .groupBy("source_file").agg(F.max("ingested").alias("ingested"), F.max("error").alias("error"))
                .collect())
    return {r.source_file for r in rows if r.ingested}, {r.source_file for r in rows if r.error}


def file_sizes(paths: list[str]) -> dict[str, int]:
    """path -> size of the files whose size the storage tells without reading them (a metadata call each)."""
    sizes = {}
    for path in paths:
        try:
            if "://" in path and not path.startswith("file://"):
                import fsspec

                fs, _, (name,) = fsspec.get_fs_token_paths(path)
                sizes[path] = int(fs.size(name))
            else:
                sizes[path] = os.path.getsize(path[len("file://"):] if path.startswith("file://") else path)
        except Exception:     # missing, unreadable: the reader reports it
            continue
    return sizes


def files_to_hash_first(spark: SparkSession, cfg: Config, paths: list[str]) -> list[str]:
    """The files that may copy another (same size as an ingested file, or as another of `paths`): only
    these are hashed before reading; every other file is hashed as it is read (udfs.warc.HashingStream)."""
    sizes = file_sizes(paths)
    if not sizes:
        return []
    known = {r.size_bytes for r in tables.read_table(spark, cfg, bronze.INGEST_FILES)
             .where(F.col("size_bytes").isin(sorted(set(sizes.values()))) & ~F.col("source_file").isin(paths))
             .select("size_bytes").distinct().collect()}
    count: dict[int, int] = {}
    for size in sizes.values():
        count[size] = count.get(size, 0) + 1
    return sorted(p for p, size in sizes.items() if size in known or count[size] > 1)


def file_digests(spark: SparkSession, paths: list[str]) -> dict[str, tuple[int | None, str | None]]:
    """path -> (size, 'sha256:<hex>') of each file, hashed in Spark tasks (streamed, 1.1 GB/s a core);
    (None, None) for a file that cannot be opened (the reader reports why)."""
    def digest(batches):
        import pyarrow as pa

        from udfs.warc import HashingStream, open_stream

        for batch in batches:
            names, sizes, digests = batch.column("path").to_pylist(), [], []
            for path in names:
                try:
                    with HashingStream(open_stream(path)) as fh:
                        size, digest = fh.digest()
                except Exception:   # missing, unreadable, a directory: ingest reads it and says what is wrong
                    size, digest = None, None
                sizes.append(size)
                digests.append(digest)
            yield pa.RecordBatch.from_arrays([pa.array(names, pa.string()), pa.array(sizes, pa.int64()),
                                              pa.array(digests, pa.string())], names=["path", "size", "digest"])

    rows = (tables.one_task_each(spark, [(p,) for p in paths], "path string")
            .mapInArrow(digest, "path string, size long, digest string").collect())
    return {r.path: (r.size, r.digest) for r in rows}


def copies_of(spark: SparkSession, cfg: Config, digests: dict[str, tuple[int | None, str | None]]) -> dict[str, str]:
    """path -> the file with the same content that was ingested before (under another path), or that comes
    first (by path) among these: the copy is not read."""
    by_digest: dict[str, str] = {}
    known = [d for _, d in digests.values() if d]
    if known:
        for r in (tables.read_table(spark, cfg, bronze.INGEST_FILES)
                  .where(F.col("file_digest").isin(sorted(set(known))) & F.col("duplicate_of").isNull()
                         & ~F.col("source_file").isin(sorted(digests)))
                  .groupBy("file_digest").agg(F.min("source_file").alias("first")).collect()):
            by_digest[r.file_digest] = r.first
    copies = {}
    for path in sorted(digests):
        d = digests[path][1]
        if d is None:
            continue
        if d in by_digest:
            copies[path] = by_digest[d]
        else:
            by_digest[d] = path
    return copies


def duplicate_records(spark: SparkSession, cfg: Config, todo: list[str]):
    """Rows of the files just read whose record_id bronze holds from another file (read earlier, or first
    by path): source_file, record_id, source_offset, is_html, same_payload, first_file."""
    from pyspark.sql import Window

    records = tables.read_table(spark, cfg, bronze.WARC_RECORDS).select(
        "record_id", "source_file", "source_offset", "is_html", "payload_digest")
    new_ids = records.where(F.col("source_file").isin(todo)).select("record_id").distinct()
    order = Window.partitionBy("record_id").orderBy(F.col("source_file").isin(todo), "source_file", "source_offset")
    ranked = records.join(new_ids, "record_id", "left_semi").select(
        "*", F.row_number().over(order).alias("rank"), F.first("payload_digest").over(order).alias("first_digest"),
        F.first("source_file").over(order).alias("first_file"))
    return ranked.where("rank > 1").select("source_file", "record_id", "source_offset", "is_html",
                                           (F.col("payload_digest") == F.col("first_digest")).alias("same_payload"),
                                           "first_file")


def drop_duplicate_records(spark: SparkSession, cfg: Config, todo: list[str], per_file: dict) -> tuple[list[tuple], int | None]:
    """Remove from bronze the records of `todo` whose id came first from another file, adjust `per_file`
    and return (DuplicateRecordId error rows for those with another payload, the version written or None)."""
    ids = tables.read_table(spark, cfg, bronze.WARC_RECORDS).select(
        "record_id", F.col("source_file").isin(todo).alias("new"))
    if not (ids.groupBy("record_id").agg(F.count(F.lit(1)).alias("n"), F.max("new").alias("new"))
            .where("n > 1 AND new").limit(1).collect()):          # the usual case: one cheap aggregate
        return [], None
    dups = duplicate_records(spark, cfg, todo)
    counted = dups.groupBy("source_file").agg(
        F.count(F.lit(1)).alias("n"), F.sum(F.col("is_html").cast("long")).alias("html"),
        F.sum(F.col("same_payload").cast("long")).alias("same")).collect()
    if not counted:
        return [], None
    errors = [(r.source_file, r.source_offset, r.record_id, "DuplicateRecordId",
               f"this WARC-Record-ID was ingested from {r.first_file} with another payload")
              for r in dups.where("NOT same_payload").collect()]
    for r in counted:
        c = per_file[r.source_file]
        c["responses"] -= r.n
        c["html"] -= r.html
        c["non_html"] -= r.n - r.html
        c["duplicate_records"] += r.same
        c["errors"] += r.n - r.same
    name = tables.ensure_table(spark, cfg, bronze.WARC_RECORDS)
    view = f"lakesift_doomed_{uuid.uuid4().hex[:12]}"     # SQL MERGE: the same through Spark Connect
    dups.select("source_file", "record_id").createOrReplaceTempView(view)   # Delta pins the snapshot it reads
    try:
        tables.with_conflict_retry(
            lambda: spark.sql(f"MERGE INTO {name} t USING {view} d ON t.source_file = d.source_file "
                              "AND t.record_id = d.record_id WHEN MATCHED THEN DELETE").collect(),
            f"drop duplicate records from {bronze.WARC_RECORDS.fullname}")
    finally:
        spark.catalog.dropTempView(view)
    return errors, tables.table_version(spark, cfg, bronze.WARC_RECORDS)


def run(spark: SparkSession, cfg: Config) -> dict:
    with job_run(cfg, "ingest", name=f"ingest {inputs_named(cfg.inputs)}") as tracked:
        paths = expand_inputs(cfg.inputs)
        ingested, with_errors = earlier_rows(spark, cfg, paths)
        skipped = set() if cfg.force else ingested
        candidates = [p for p in paths if p not in skipped]
        phases = _Phases()
        suspects = files_to_hash_first(spark, cfg, candidates) if candidates else []
        digests = file_digests(spark, suspects) if suspects else {}
        copies = copies_of(spark, cfg, digests)
        todo = [p for p in candidates if p not in copies]
        phases.done("identify")
        tracked.metrics(files_in=len(paths), files_already_ingested=len(skipped), files_copies=len(copies),
                        files_read=len(todo))
        summary = {"run_id": tracked.run_id, "files": len(paths), "files_already_ingested": len(skipped),
                   "files_read": len(todo), "copies": copies, "per_file": {}, **dict.fromkeys(COUNT_KEYS, 0)}
        if not candidates:
            return summary
        per_file: dict[str, dict[str, int]] = {}
        if todo:
            where = tables.in_list("source_file", todo)
            written, side_rows = tables.rewrite(spark, cfg, bronze.WARC_RECORDS, kernel(cfg), "source_file", todo, files=todo)
            phases.done("read")
            files = [r for r in side_rows if r["kind"] == "file"]
            per_file = {r["source_file"]: {k: int(r[f"n_{k}"]) for k in COUNT_KEYS} for r in files}
            digests.update({r["source_file"]: (r["size_bytes"], r["file_digest"]) for r in files})
            error_rows = [tuple(r.get(c) for c in bronze.INGEST_ERRORS.column_names) for r in side_rows if r["kind"] == "error"]
            more_errors, version = drop_duplicate_records(spark, cfg, todo, per_file)
            phases.done("duplicates")
            tracked.table_written(bronze.WARC_RECORDS.fullname, written if version is None else version)
            error_rows += more_errors
            if error_rows or with_errors.intersection(todo):      # else there is nothing to add or replace
                errors = spark.createDataFrame(error_rows, bronze.INGEST_ERRORS.schema)
                tracked.table_written(bronze.INGEST_ERRORS.fullname,
                                      tables.replace_where(errors, cfg, bronze.INGEST_ERRORS, where))
        tracked.table_written(bronze.INGEST_FILES.fullname, _write_files(spark, cfg, candidates, digests, copies, per_file))
        phases.done("record")
        totals = {k: sum(f[k] for f in per_file.values()) for k in COUNT_KEYS}
        tracked.metrics(**{f"rows_{k}": v for k, v in totals.items()}, **phases.seconds)
        tracked.text(_per_file_tsv(per_file), "per_file_counts.tsv")
        summary.update(totals, per_file=per_file)
        return summary


class _Phases:
    """Seconds per phase of a run, logged as metrics seconds_<phase>."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._since = time.perf_counter()

    def done(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[f"seconds_{phase}"] = round(now - self._since, 3)
        self._since = now


def _write_files(spark: SparkSession, cfg: Config, paths: list[str], digests: dict, copies: dict[str, str],
                 per_file: dict[str, dict[str, int]]) -> int:
    """Replace the bronze.ingest_files rows of `paths`: what each held, or the file it copies."""
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    empty = dict.fromkeys(COUNT_KEYS, 0)
    rows = []
    for path in paths:
        size, digest = digests.get(path, (None, None))
        c = per_file.get(path, empty)
        rows.append((path, digest, size, copies.get(path), c["responses"], c["html"], c["non_http_skipped"],
                     c["errors"], c["duplicate_records"], now))
    df = spark.createDataFrame(rows, bronze.INGEST_FILES.schema)
    return tables.replace_where(df, cfg, bronze.INGEST_FILES, tables.in_list("source_file", paths))


def _per_file_tsv(per_file: dict[str, dict[str, int]]) -> str:
    lines = ["source_file\t" + "\t".join(COUNT_KEYS)]
    lines += [f + "\t" + "\t".join(str(c[k]) for k in COUNT_KEYS) for f, c in sorted(per_file.items())]
    return "\n".join(lines) + "\n"


def report(s: dict) -> Report:
    from jobs.console import render_table

    rows = [(os.path.basename(f) or f, c["responses"], c["html"], c["non_html"], c["non_http_skipped"], c["errors"],
             c["duplicate_records"]) for f, c in sorted(s["per_file"].items())]
    rows += [(os.path.basename(f) or f, "", "", "", "", "", f"copy of {of}") for f, of in sorted(s["copies"].items())]
    detail = render_table(("file", "responses", "html", "non_html", "non_http", "unreadable", "duplicates"), rows) if rows else ""
    copies = f", {len(s['copies'])} cop{'y' if len(s['copies']) == 1 else 'ies'} of ingested files skipped" if s["copies"] else ""
    dups = f", {s['duplicate_records']} duplicate record(s) dropped" if s["duplicate_records"] else ""
    return Report(s["responses"] + s["non_http_skipped"] + s["errors"] + s["duplicate_records"], s["responses"],
                  f"{s['files_read']} file(s) read, {s['files_already_ingested']} already ingested{copies}; "
                  f"{s['html']} html, {s['non_html']} non-html, {s['errors']} unreadable{dups}", detail)


STAGE = Stage("ingest", "WARC/ARC files -> bronze.warc_records (+ bronze.ingest_errors, bronze.ingest_files)", Config,
              lambda spark, cfg, progress: run(spark, cfg), reads=(),
              writes=(bronze.WARC_RECORDS.fullname, bronze.INGEST_ERRORS.fullname, bronze.INGEST_FILES.fullname),
              report=report)
