"""Model files on executors: the driver ships a file or folder with SparkContext.addFile, the UDF resolves it
with SparkFiles on whichever machine it runs. Paths on shared storage (dbfs:/Volumes, a mounted bucket) pass
through unchanged, which is also the fallback where there is no SparkContext (Spark Connect)."""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)
PREFIX = "sparkfiles:"


def ship(spark, path: str) -> str:
    """A reference to `path` that local_path() resolves on executors. Names must be unique per session
    (tracking.download_model gives every download its own folder name)."""
    try:
        spark.sparkContext.addFile(path, recursive=os.path.isdir(path))
    except Exception as exc:            # Spark Connect has no SparkContext: the path must be shared storage
        log.warning("could not ship %s to executors (%s); executors will read it from that path", path, exc)
        return path
    return PREFIX + os.path.basename(path.rstrip("/"))


def local_path(ref: str | None) -> str | None:
    if ref is None or not ref.startswith(PREFIX):
        return ref
    from pyspark import SparkFiles

    return SparkFiles.get(ref[len(PREFIX):])
