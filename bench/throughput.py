"""WARC -> silver throughput on real pages, beside bare resiliparse and trafilatura loops.

The 990 real pages of the trafilatura benchmark are wrapped into gzip-per-record WARC response records
(made-up WARC/HTTP headers, real HTML), copied COPIES times under new record ids into FILES files. The
default, 32 copies in 32 files (906 MB), is about the size of one Common Crawl WARC file (~1 GB
gzipped), the unit a crawl job is made of. lakesift runs ingest -> extract (main text, charset, language
ID) -> heuristics through Spark local[*] with Delta writes and MLflow runs, PASSES times in one session:
the first pass is reported as cold, the median of the others as warm (the steady state of a crawl of
many files). Every run of the three jobs also costs a fixed few seconds (Delta table creation, commits,
query planning, MLflow runs) whatever its size: that is measured apart, on a 20-page file, and is why
a small input (BENCH_COPIES=8 BENCH_FILES=8, 226 MB) gives a lower rate.
The bare loops read the same WARC with FastWARC and extract on one core, nothing else.
Target: >= 4.5 MB/s/core of gzipped WARC, warm (DCLM's figure for resiliparse extraction alone).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import eval_pages, report, write_pages_as_warc

COPIES = int(os.environ.get("BENCH_COPIES", "32"))
FILES = int(os.environ.get("BENCH_FILES", "32"))     # a crawl is many files; Spark reads one file per task
PASSES = int(os.environ.get("BENCH_PASSES", "4"))    # 1 cold + 3 warm
BARE_FILES = 4           # the bare resiliparse loop reads this many files: a steadier figure than one
SMALL_PAGES = 20         # the per-run fixed cost is measured on a file of this many pages
SMALL_RUNS = 3


def bare_loop(warcs: list[Path], extract) -> tuple[float, int, int]:
    """(seconds, records, gz bytes) for FastWARC + an extractor over the files, on one core."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    started = time.perf_counter()
    n = 0
    for warc in warcs:
        with open(warc, "rb") as fh:
            for rec in ArchiveIterator(fh, record_types=WarcRecordType.response, parse_http=True):
                extract(rec.reader.read())
                n += 1
    return time.perf_counter() - started, n, sum(w.stat().st_size for w in warcs)


def _resiliparse(raw: bytes) -> str:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding
    from resiliparse.parse.html import HTMLTree

    return extract_plain_text(HTMLTree.parse(bytes_to_str(raw, detect_encoding(raw))), main_content=True)


def _trafilatura(raw: bytes) -> str:
    import trafilatura

    return trafilatura.extract(raw) or ""


def lakesift_pipeline(warcs: list[Path], small: Path, home: str) -> dict:
    """ingest -> extract -> heuristics, PASSES times over the same files, each into a new lakehouse that
    shares one MLflow store. The first pass runs in a new JVM (class loading, JIT compilation, Python
    workers, model loads): that is the cold figure. Later passes are the steady state a crawl of many
    files runs at: the warm figure is their median. Then SMALL_RUNS passes over the small file, in the
    same warm session: their median is the fixed cost of one run of the three jobs."""
    from jobs.bronze import ingest_warc
    from jobs.runtime.config import JobConfig
    from jobs.runtime.spark import get_spark
    from jobs.silver import compute_heuristics, extract_documents

    tracking = f"sqlite:///{home}-mlflow.db"

    def pipeline(h: str, files: list[Path]) -> tuple[dict, dict, float]:
        stages, started = {}, time.perf_counter()
        t = time.perf_counter()
        ing = ingest_warc.run(spark, ingest_warc.Config(home=h, tracking_uri=tracking, inputs=tuple(map(str, files))))
        stages["ingest"] = time.perf_counter() - t
        t = time.perf_counter()
        docs = extract_documents.run(spark, extract_documents.Config(home=h, tracking_uri=tracking))
        stages["extract"] = time.perf_counter() - t
        t = time.perf_counter()
        compute_heuristics.run(spark, compute_heuristics.Config(home=h, tracking_uri=tracking))
        stages["heuristics"] = time.perf_counter() - t
        return {"responses": ing["responses"], "documents": docs["rows_out_documents"]}, stages, time.perf_counter() - started

    started = time.perf_counter()
    spark = get_spark(JobConfig(home=home, tracking_uri=tracking), app_name="bench-throughput")
    session_s = time.perf_counter() - started
    passes = []
    for i in range(PASSES):
        passes.append(pipeline(f"{home}-{i}", warcs))
        print(f"pass {i + 1} of {PASSES}: {passes[-1][2]:.1f} s", flush=True)
        shutil.rmtree(f"{home}-{i}", ignore_errors=True)
    counts = passes[0][0]
    assert all(p[0] == counts for p in passes), "every pass must produce the same counts"
    warm = sorted(passes[1:], key=lambda p: p[2])[(len(passes) - 2) // 2]     # the median warm pass
    small_runs = sorted(pipeline(f"{home}-small-{i}", [small])[2] for i in range(SMALL_RUNS))
    return {"cold_seconds": passes[0][2], "warm_seconds": warm[2], "warm_stages": warm[1],
            "all_pass_seconds": [round(p[2], 1) for p in passes], "session_start_seconds": session_s,
            "small_run_seconds": small_runs[len(small_runs) // 2],
            "cores": spark.sparkContext.defaultParallelism, **counts}


def main() -> None:
    pages = [(url, raw) for url, _, raw in eval_pages()]
    tmp = Path(tempfile.mkdtemp(prefix="lakesift-bench-"))
    try:
        records = [(f"{url}{'&' if '?' in url else '?'}copy={c}" if c else url, raw)
                   for c in range(COPIES) for url, raw in pages]
        per_file = -(-len(records) // FILES)
        warcs = []
        for i in range(FILES):
            path = tmp / f"real-pages-{i:02d}.warc.gz"
            write_pages_as_warc(path, records[i * per_file:(i + 1) * per_file], first_id=i * per_file)
            warcs.append(path)
        small = tmp / "small.warc.gz"
        write_pages_as_warc(small, pages[:SMALL_PAGES], crawl="BENCH-SMALL", first_id=len(records))
        mb = sum(p.stat().st_size for p in warcs) / 1e6
        print(f"{len(records)} records ({len(pages)} real pages x {COPIES}) in {FILES} files, {mb:.1f} MB gzipped "
              "WARC. The WARC and HTTP headers are made up; the HTML is real.", flush=True)
        res_s, res_n, res_b = bare_loop(warcs[:BARE_FILES], _resiliparse)
        traf_s, traf_n, traf_b = bare_loop([warcs[min(BARE_FILES, len(warcs) - 1)]], _trafilatura)
        ours = lakesift_pipeline(warcs, small, str(tmp / "lakehouse"))
        cores = ours["cores"]

        def lakesift_row(label: str, seconds: float) -> list:
            return [label, cores, round(seconds, 1), round(mb / seconds / cores, 2), round(ours["documents"] / seconds / cores, 1)]

        warm_per_core = mb / ours["warm_seconds"] / cores
        rows = [
            lakesift_row(f"lakesift WARC->bronze->silver, warm (median of {PASSES - 1} passes)", ours["warm_seconds"]),
            lakesift_row("lakesift WARC->bronze->silver, cold (first pass in a new JVM)", ours["cold_seconds"]),
            [f"lakesift fixed cost of one run ({SMALL_PAGES} pages, warm)", cores, round(ours["small_run_seconds"], 1),
             "", ""],
            ["bare FastWARC + resiliparse loop (extraction only)", 1, round(res_s, 1), round(res_b / 1e6 / res_s, 2),
             round(res_n / res_s, 1)],
            ["bare FastWARC + trafilatura loop (extraction only)", 1, round(traf_s, 1), round(traf_b / 1e6 / traf_s, 2),
             round(traf_n / traf_s, 1)],
        ]
        report("throughput", ["pipeline", "cores", "seconds", "MB/s/core (gz WARC)", "docs/s/core"], rows, {
            "records": len(records), "files": FILES, "warc_mb": mb, "copies": COPIES, "passes": PASSES,
            "lakesift_pass_seconds": ours["all_pass_seconds"],
            "lakesift_warm_stage_seconds": {k: round(v, 2) for k, v in ours["warm_stages"].items()},
            "lakesift_session_start_seconds": round(ours["session_start_seconds"], 1),
            "lakesift_fixed_run_seconds": round(ours["small_run_seconds"], 2),
            "note": "WARC/HTTP headers made up, HTML real (trafilatura benchmark pages). lakesift = ingest (bronze "
                    "with payloads) + extract (charset, main text, language ID) + heuristics, Spark local[*] with "
                    "Delta writes and an MLflow run per job; every pass writes a new lakehouse; the first pass "
                    "includes JVM class loading and JIT compilation, session start is excluded; the fixed cost "
                    "is the median of runs over a small file in the warm session",
            "targets": {"lakesift warm >= 4.5 MB/s/core": warm_per_core >= 4.5},
        })
        print("lakesift passes (s):", ours["all_pass_seconds"], "| median warm pass by stage (s):",
              {k: round(v, 1) for k, v in ours["warm_stages"].items()},
              f"| session start {ours['session_start_seconds']:.0f}s, not included")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
