"""Bronze: what the crawl files hold, byte-faithful, plus what could not be read."""
from pyspark.sql.types import (
    BinaryType,
    BooleanType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
)

from schemas.contract import Column, TableContract

WARC_RECORDS = TableContract(
    layer="bronze",
    name="warc_records",
    key=("record_id",),
    comment="One row per HTTP response record of the ingested WARC/ARC files.",
    columns=(
        Column("record_id", StringType(), "WARC-Record-ID without angle brackets (ARC: urn:lakesift:arc:<sha1>)", False),
        Column("crawl", StringType(), "crawl id: --crawl, else warcinfo isPartOf, else CC-MAIN-* in the path, else unknown", False),
        Column("target_uri", StringType(), "WARC-Target-URI (angle brackets removed)"),
        Column("source_file", StringType(), "the file as given to ingest (absolute path or URL)", False),
        Column("source_offset", LongType(), "byte offset of the record in the (compressed) file", False),
        Column("format", StringType(), "WARC/1.0, WARC/1.1, WARC/0.17 or ARC/1", False),
        Column("warc_date", TimestampType(), "WARC-Date (ARC: archive date), UTC"),
        Column("http_status", IntegerType(), "HTTP status code"),
        Column("content_type", StringType(), "HTTP Content-Type media type, lower case, parameters removed"),
        Column("declared_charset", StringType(), "charset parameter of the HTTP Content-Type, lower case"),
        Column("content_encoding", StringType(), "HTTP Content-Encoding, if the stored body is still encoded"),
        Column("transfer_encoding", StringType(), "HTTP Transfer-Encoding, if the stored body is still chunked"),
        Column("is_html", BooleanType(), "declared text/html or application/xhtml+xml, or undeclared and sniffed as HTML", False),
        Column("payload", BinaryType(), "HTTP entity body as stored in the record, cut at max_payload_bytes"),
        Column("payload_length", LongType(), "length of the whole entity body before any cut", False),
        Column("payload_truncated", BooleanType(), "cut by max_payload_bytes, or marked WARC-Truncated by the crawler", False),
        Column("payload_digest", StringType(), "sha1:<base32> of the whole entity body as stored", False),
    ),
    partition_by=("crawl",),
    # Statistics for data skipping on the small columns only (partition columns need none): collecting
    # them over `payload` cost 40% of ingest's write time (bench/throughput.py), and the min/max of a web
    # page skips nothing.
    # Parquet settings for the payload, the bulk of the bytes (measured on 1.1 GB of real HTML by
    # bench/throughput.py): web pages are unique, so dictionary encoding only costs hashing (0.7 s of
    # 3.2 s of write time); zstd level 1 instead of 3 cut the rest to 1.7 s for 12% more bytes; min/max
    # statistics of a page skip nothing. Table properties reach Delta's Parquet writer on any cluster.
    properties={"delta.dataSkippingStatsColumns": "record_id,target_uri,source_file,source_offset,warc_date,"
                                                  "http_status,content_type,payload_length",
                "parquet.enable.dictionary#payload": "false",
                "parquet.column.statistics.enabled#payload": "false",
                "parquet.compression.codec.zstd.level": "1"},
)

INGEST_ERRORS = TableContract(
    layer="bronze",
    name="ingest_errors",
    comment="Everything ingest could not read: one row per unreadable file, record or byte range.",
    columns=(
        Column("source_file", StringType(), "the file as given to ingest", False),
        Column("source_offset", LongType(), "byte offset where the problem starts; NULL when the file could not be opened"),
        Column("record_id", StringType(), "WARC-Record-ID when the record header was readable"),
        Column("error_class", StringType(), "FileNotFound, ReadError, UnrecognisedFormat, CorruptBytes, CorruptGzip, TruncatedRecord, MissingContentLength, BadContentLength, ContentLengthMismatch, OversizedHeader, OversizedRecord, MalformedRecord, MalformedHttp (udfs/warc.py); DuplicateRecordId (ingest: the id was ingested with another payload)", False),
        Column("message", StringType(), "what went wrong, for a person", False),
    ),
)

INGEST_FILES = TableContract(
    layer="bronze",
    name="ingest_files",
    key=("source_file",),
    comment="One row per crawl file ingest saw: its content digest, what it held, or the file it copies.",
    columns=(
        Column("source_file", StringType(), "the file (symlinks resolved, absolute path or URL)", False),
        Column("file_digest", StringType(), "sha256:<hex> of the file's bytes; NULL when it could not be read"),
        Column("size_bytes", LongType(), "file size; NULL when it could not be read"),
        Column("duplicate_of", StringType(), "the file ingested earlier with the same digest: this copy was not read"),
        Column("responses", LongType(), "HTTP response records read into bronze.warc_records", False),
        Column("html", LongType(), "of which HTML", False),
        Column("non_http_skipped", LongType(), "response records that are not HTTP (dns:, …): counted, not stored", False),
        Column("errors", LongType(), "rows in bronze.ingest_errors", False),
        Column("duplicate_records", LongType(), "records whose WARC-Record-ID was ingested from another file first "
                                                "(same payload: dropped; another payload: an error row)", False),
        Column("ingested_at", TimestampType(), "when ingest read (or skipped) the file, UTC", False),
    ),
)

TABLES = (WARC_RECORDS, INGEST_ERRORS, INGEST_FILES)
