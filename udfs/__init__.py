"""Executor-side kernels. Importing the package also keeps Spark's own zip archives' indexes in a Python
worker (below): every worker function imports from here."""
from __future__ import annotations

import os
import zipimport


def keep_spark_archive_indexes() -> None:
    """Spark's Python worker calls importlib.invalidate_caches() before every task, and Python's zipimporter
    then reads its archive's whole index again, once per package imported from it. Spark puts pyspark.zip,
    py4j's zip and the spark-core jar on the workers' path, and pyspark is imported from them: 16 such
    importers, 150-250 ms of CPU per task here (a 990-page extract task runs ~4 s). Archives under
    SPARK_HOME are Spark's installation and do not change while a worker lives, so theirs are kept; any
    other archive (a job's --py-files) is read again as before."""
    spark_home = os.environ.get("SPARK_HOME")
    original = zipimport.zipimporter.invalidate_caches
    if not spark_home or getattr(original, "keeps_spark_archives", False):
        return
    root = os.path.join(os.path.realpath(spark_home), "")

    def invalidate_caches(self) -> None:
        if not os.path.realpath(self.archive).startswith(root):
            original(self)

    invalidate_caches.keeps_spark_archives = True
    invalidate_caches.original = original
    zipimport.zipimporter.invalidate_caches = invalidate_caches


keep_spark_archive_indexes()
