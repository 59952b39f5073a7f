"""Python workers keep the indexes of Spark's own zip archives across tasks (udfs/__init__.py)."""
from __future__ import annotations

import zipfile
import zipimport

import udfs


def _zip(path, *modules: str) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name in modules:
            z.writestr(f"{name}.py", f"NAME = {name!r}\n")


def test_archives_under_spark_home_keep_their_index_and_others_are_read_again(tmp_path, monkeypatch):
    current = zipimport.zipimporter.invalidate_caches
    monkeypatch.setattr(zipimport.zipimporter, "invalidate_caches", getattr(current, "original", current))
    home = tmp_path / "spark"
    (home / "python" / "lib").mkdir(parents=True)
    spark_zip, other_zip = home / "python" / "lib" / "pyspark.zip", tmp_path / "job-deps.zip"
    _zip(spark_zip, "one")
    _zip(other_zip, "one")
    monkeypatch.setenv("SPARK_HOME", str(home))
    udfs.keep_spark_archive_indexes()
    assert zipimport.zipimporter.invalidate_caches.keeps_spark_archives
    spark_importer, other_importer = zipimport.zipimporter(str(spark_zip)), zipimport.zipimporter(str(other_zip))

    _zip(spark_zip, "one", "two")          # the archives change on disk; then what Spark does before a task
    _zip(other_zip, "one", "two")
    spark_importer.invalidate_caches()
    other_importer.invalidate_caches()
    assert spark_importer.find_spec("two") is None and spark_importer.find_spec("one") is not None
    assert other_importer.find_spec("two") is not None

    udfs.keep_spark_archive_indexes()      # a second call does not wrap the wrapper
    assert zipimport.zipimporter.invalidate_caches.original is getattr(current, "original", current)


def test_a_spark_worker_keeps_pysparks_index_between_tasks(spark):
    def probe(batches):
        import importlib
        import os
        import sys

        import pyarrow as pa

        import udfs  # noqa: F401  (what every worker function does first, through its kernel's module)

        for _ in batches:
            pass
        root = os.path.realpath(os.environ["SPARK_HOME"])
        spark_archives = {a for a in sys.path if a.endswith((".zip", ".jar")) and os.path.realpath(a).startswith(root)}
        before = {a: zipimport._zip_directory_cache.get(a) for a in spark_archives}
        importlib.invalidate_caches()
        kept = sum(zipimport._zip_directory_cache.get(a) is before[a] for a in spark_archives)
        yield pa.RecordBatch.from_pydict({"archives": pa.array([len(spark_archives)], pa.int64()),
                                          "kept": pa.array([kept], pa.int64())})

    rows = spark.range(4).repartition(2).mapInArrow(probe, "archives long, kept long").collect()
    assert rows and all(r.archives >= 2 and r.kept == r.archives for r in rows)
