"""Arrow record batches for mapInArrow functions: from row dicts, and from a table's Parquet data files."""
from __future__ import annotations

from typing import Iterable, Iterator

# Rows here carry whole web pages: 10,000 per Arrow batch (Spark's default) can mean gigabytes; moving
# payloads to Python costs least at ~200-500 rows per batch (bench/throughput.py). Workers reading data
# files themselves use the same batch size.
ARROW_BATCH_ROWS = 256


def arrow_schema(spark_schema):
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(spark_schema)


def batches(rows: Iterable[dict], schema, max_rows: int = 256, max_bytes: int = 4 << 20,
            size_of=lambda row: 0) -> Iterator:
    """Group row dicts into pyarrow RecordBatches, built column by column (10x faster than from_pylist);
    a batch closes at max_rows or once size_of(rows) passes max_bytes.

    Batch size decides whether the JVM reuses the memory it receives batches into: ingesting 226 MB of
    WARC (1.1 GB of payloads) cost the JVM 200-300k page faults per warm pass with 32 MiB batches, 3k with
    4 MiB ones (8 MiB: 13-140k), and ~10% less JVM CPU (3-4 warm passes each, bench/throughput.py data)."""
    import pyarrow as pa

    fields = [(f.name, f.type) for f in schema]

    def batch(pending: list[dict]):
        return pa.RecordBatch.from_arrays(
            [pa.array([r.get(name) for r in pending], type=typ) for name, typ in fields], schema=schema)

    pending: list[dict] = []
    pending_bytes = 0
    for row in rows:
        pending.append(row)
        pending_bytes += size_of(row)
        if len(pending) >= max_rows or pending_bytes >= max_bytes:
            yield batch(pending)
            pending, pending_bytes = [], 0
    if pending:
        yield batch(pending)


def read_parquet(path: str, schema, batch_rows: int) -> Iterator:
    """The columns of the Arrow `schema` from one local Parquet data file, cast to it, `batch_rows` rows at
    a time (Spark writes timestamps as INT96, which pyarrow reads as naive nanoseconds in UTC)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=schema.names):
        yield pa.RecordBatch.from_arrays(
            [batch.column(f.name).cast(f.type) for f in schema], schema=schema)


def read_data_files(batches: Iterable, schema, batch_rows: int, partition: str = "crawl") -> Iterator:
    """mapInArrow side of a job whose workers read a table's data files: for each (path, partition value)
    row of `batches` (from tables.file_counts), that file's rows in the columns of `schema`, `batch_rows` at a
    time, with the partition column appended (a string, as the file's folder names it)."""
    import pyarrow as pa

    for batch in batches:
        for path, value in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
            for rows in read_parquet(path, schema, batch_rows):
                yield rows.append_column(partition, pa.array([value] * rows.num_rows, pa.string()))
