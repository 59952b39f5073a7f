"""Model files on executors: the driver ships a file or folder with SparkContext.addFile, the UDF resolves it
with SparkFiles on whichever machine it runs. Through Spark Connect there is no SparkContext (and
addArtifacts takes no folders): the path goes to the executors unchanged, so it must be one they can read:
this machine's disk for `lakesift serve` or SPARK_REMOTE=local[N], a Unity Catalog volume (/Volumes/...) or
another shared path on Databricks. Paths on shared storage (dbfs:/Volumes, a mounted bucket) also pass through
unchanged where addFile refuses them."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile

from udfs.hashing import file_sha256

log = logging.getLogger(__name__)
PREFIX = "sparkfiles:"


def ship(spark, path: str, home: str | None = None) -> str:
    """A reference to `path` that local_path() resolves on executors. Spark keeps one shipped file per
    name for the whole session, so a file is shipped under its content digest (two different model.bin
    files both reach executors) and folders must have unique names (tracking.download_model gives every
    download its own). Through Spark Connect on Databricks (serverless), where this process's disk is not
    the executors', a file or folder on local disk is copied to <home>/_shipped/ (`home`: the lakehouse
    folder, a Unity Catalog volume there) and read from there."""
    if type(spark).__module__.startswith("pyspark.sql.connect"):     # as jobs.runtime.spark.is_connect
        if "DATABRICKS_RUNTIME_VERSION" not in os.environ or path.startswith(("/Volumes/", "/dbfs/", "/Workspace/")) \
                or "://" in path or path.startswith("dbfs:"):
            return path
        if not home or not home.startswith("/Volumes/"):
            raise ValueError(f"{path} is on this machine's disk, which Spark Connect's executors cannot read: give "
                             "--home on a Unity Catalog volume (/Volumes/...) to stage it there")
        staged = os.path.join(home, "_shipped", os.path.basename(content_named(path) if os.path.isfile(path) else path.rstrip("/")))
        if not os.path.exists(staged):
            os.makedirs(os.path.dirname(staged), exist_ok=True)
            (shutil.copyfile if os.path.isfile(path) else shutil.copytree)(path, staged)
        return staged
    if os.path.isfile(path):
        path = content_named(path)
    try:
        spark.sparkContext.addFile(path, recursive=os.path.isdir(path))
    except Exception as exc:            # e.g. a dbfs: path: the executors read it there
        log.warning("could not ship %s to executors (%s); executors will read it from that path", path, exc)
        return path
    return PREFIX + os.path.basename(path.rstrip("/"))


def local_path(ref: str | None) -> str | None:
    if ref is None or not ref.startswith(PREFIX):
        return ref
    from pyspark import SparkFiles

    return SparkFiles.get(ref[len(PREFIX):])


def content_named(path: str) -> str:
    """A copy of the file named <sha256 prefix>-<name>, in a temporary folder of this machine."""
    folder = os.path.join(tempfile.gettempdir(), "lakesift-shipped")
    os.makedirs(folder, exist_ok=True)
    staged = os.path.join(folder, f"{file_sha256(path)[:16]}-{os.path.basename(path)}")
    if not os.path.exists(staged):
        partial = f"{staged}.{os.getpid()}.partial"
        shutil.copyfile(path, partial)
        os.replace(partial, staged)
    return staged
