"""The real pool as crawls, and the whole pipeline over it on this machine.

Build (`python -m bench.pool build`): ../shared/data/pool's real texts (211,726 Blog Authorship Corpus posts,
the 11,314 posts of the 20 Newsgroups `train` split) wrapped into WARC response records: each text as
minimal HTML (title, one <p> per blank-line block, the text HTML-escaped), with made-up WARC and HTTP headers
and URLs; the text itself is real and unchanged. With them, the trafilatura set's 990 real pages (real HTML,
made-up headers) and the real WARC files of ../shared/data/warc. Two crawl ids by date: POOL-EARLY (posts
dated before 2004, and Usenet's 1993) and POOL-2004 (posts of 2004 and later, and the 990 pages), so global
deduplication spans crawls. Evaluation domains are written apart and never enter the pool: the 20 Newsgroups
`test` split, the cleaneval pages' gold text, and WikiText-2 test (read where it is).

Run (`python -m bench.pool run`): `lakesift run` over the crawl files (jobs/pipeline.py, as a user runs it):
ingest -> extract (with heuristics) -> dedup (global) -> decontaminate -> train-quality (reference text + the
DCLM dev labels) -> classify -> select every shipped recipe -> export, one Spark session, measuring per stage: wall seconds, CPU seconds (every process of the run), rows in and
out, peak resident memory of the JVM and of the Python workers (sampled from /proc every 0.5 s), and each
recipe's funnel in documents and tokens. Writes bench/results/pool.json. Targets: all of it within 30
minutes, no stage above 6 GB.
"""
from __future__ import annotations

import argparse
import gzip
import html
import json
import os
import shutil
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bench.common import SHARED, eval_pages, need_shared, report

WORK = Path(os.environ.get("BENCH_POOL_DIR", "/tmp/lakesift-pool"))
EARLY, LATE = "POOL-EARLY", "POOL-2004"
RECORDS_PER_FILE = 20_000
MONTHS = {m: i + 1 for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                          "september", "october", "november", "december"])}
# Every shipped recipe but semdedup: its sentence embeddings of the 224k pool documents take about 40 minutes
# on 2 CPU cores (bench/semantic_dedup.py measures it on a sample instead).
def pool_recipes() -> tuple[str, ...]:
    from jobs.gold import recipe as R

    return tuple(r for r in R.shipped_recipes() if r != "semdedup")


NOTE = ("pool texts are real (Blog Authorship Corpus, 20 Newsgroups train) wrapped as minimal HTML in WARC records "
        "with made-up WARC/HTTP headers and URLs; the 990 trafilatura pages are real HTML with made-up headers; "
        "../shared/data/warc files are real crawls")


def _date(text: str) -> datetime:
    """'29,July,2004' -> a date; anything unreadable -> 2004-01-01."""
    try:
        day, month, year = text.split(",")
        return datetime(int(year), MONTHS[month.strip().lower()], int(day), tzinfo=timezone.utc)
    except (ValueError, KeyError):
        return datetime(2004, 1, 1, tzinfo=timezone.utc)


def as_html(title: str, text: str) -> bytes:
    blocks = [b.strip() for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    body = "\n".join(f"<p>{html.escape(b)}</p>" for b in blocks)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>\n"
            f"<body>\n{body}\n</body></html>\n").encode("utf-8")


class WarcWriter:
    """Gzip-per-record WARC files of at most RECORDS_PER_FILE responses, one series per crawl."""

    def __init__(self, folder: Path, crawl: str):
        self.folder, self.crawl, self.count, self.fh, self.files = folder, crawl, 0, None, []

    def add(self, url: str, date: datetime, body: bytes) -> None:
        from jobs.demo.sample_crawl import warc_record

        if self.fh is None or self.count % RECORDS_PER_FILE == 0:
            self._open(date)
        http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        rid = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, self.crawl + url)}"
        self.fh.write(gzip.compress(warc_record("response", rid, date, http, url), compresslevel=1, mtime=0))
        self.count += 1

    def _open(self, date: datetime) -> None:
        from jobs.demo.sample_crawl import warc_record

        if self.fh:
            self.fh.close()
        path = self.folder / f"{self.crawl}-{len(self.files):05d}.warc.gz"
        self.files.append(path)
        self.fh = open(path, "wb")
        info = f"isPartOf: {self.crawl}\r\ndescription: {NOTE}\r\n".encode()
        self.fh.write(gzip.compress(warc_record("warcinfo", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, str(path.name))}",
                                                date, info, content_type="application/warc-fields"), mtime=0))

    def close(self) -> None:
        if self.fh:
            self.fh.close()


def _jsonl(path: Path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def build(work: Path, limit: int | None = None) -> dict:
    """Write the crawls and the evaluation domains under `work`; returns the manifest (also written)."""
    need_shared()
    crawls_dir, evals_dir = work / "crawls", work / "evals"
    for d in (crawls_dir, evals_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    writers = {EARLY: WarcWriter(crawls_dir, EARLY), LATE: WarcWriter(crawls_dir, LATE)}
    counts = {"blog_posts": 0, "newsgroups_train": 0, "trafilatura_pages": 0}
    started = time.perf_counter()
    for shard in sorted((SHARED / "pool" / "blogs").glob("blogs-*.jsonl.gz")):
        for post in _jsonl(shard):
            if limit and counts["blog_posts"] >= limit:
                break
            date = _date(post["date"])
            crawl = EARLY if date.year < 2004 else LATE
            title = f"{post['industry']} blog {post['blog_id']}, {post['date']}"
            writers[crawl].add(f"http://blog-{post['blog_id']}.blogs.example/post/{post['id'].rsplit('-', 1)[-1]}",
                               date, as_html(title, post["text"]))
            counts["blog_posts"] += 1
    test_docs = []
    for msg in _jsonl(SHARED / "pool" / "newsgroups" / "20news-bydate.jsonl.gz"):
        if msg["split"] == "test":
            test_docs.append(msg["text"])
            continue
        if limit and counts["newsgroups_train"] >= max(1, limit // 20):
            continue
        _, _, group, number = msg["id"].split("-", 3)
        writers[EARLY].add(f"http://usenet.example/{group}/{number}", datetime(1993, 4, 1, tzinfo=timezone.utc),
                           as_html(f"{group} {number}", msg["text"]))
        counts["newsgroups_train"] += 1
    for url, _, raw in eval_pages()[: (limit // 100 if limit else None)]:
        writers[LATE].add(url, datetime(2024, 1, 1, tzinfo=timezone.utc), raw)
        counts["trafilatura_pages"] += 1
    for w in writers.values():
        w.close()
    real_warcs = sorted(p for p in (SHARED / "warc").iterdir() if p.name.endswith((".warc.gz", ".arc.gz")))
    # evaluation domains: one document per blank-line-separated block is how the trainer reads them
    domains = {"newsgroups_test": evals_dir / "newsgroups_test.txt", "cleaneval_gold": evals_dir / "cleaneval_gold.txt"}
    domains["newsgroups_test"].write_text("\n\n".join(t.strip() for t in test_docs) + "\n", encoding="utf-8")
    gold = []
    for part in sorted((SHARED / "html" / "cleaneval").glob("*.jsonl.gz")):
        gold += [page["gold"].strip() for page in _jsonl(part) if page["gold"].strip()]
    domains["cleaneval_gold"].write_text("\n\n".join(gold) + "\n", encoding="utf-8")
    domains["wikitext2_test"] = SHARED / "text" / "wikitext-2_test.txt"
    manifest = {
        "note": NOTE, "limit": limit, "build_seconds": round(time.perf_counter() - started, 1),
        "crawl_files": [str(p) for w in writers.values() for p in w.files] + [str(p) for p in real_warcs],
        "records": {crawl: w.count for crawl, w in writers.items()}, "sources": counts,
        "real_warc_files": [p.name for p in real_warcs],
        "evaluation_domains": {k: str(v) for k, v in domains.items()},
        "evaluation_documents": {"newsgroups_test": len(test_docs), "cleaneval_gold": len(gold)},
    }
    (work / "pool_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# ------------------------------------------------------------------------------------------- measuring

def _proc_tree(root: int) -> dict[int, tuple[str, float, int]]:
    """pid -> (kind, cpu seconds, rss bytes) for `root` and its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    children: dict[int, list[int]] = {}
    info = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        ppid = int(fields[1])
        children.setdefault(ppid, []).append(int(entry))
        cpu = (int(fields[11]) + int(fields[12])) / tick
        rss = int(fields[21]) * page
        kind = "jvm" if "java" in cmd.split(" ")[0] else "python_worker" if "pyspark" in cmd or "daemon" in cmd else "driver"
        info[int(entry)] = (kind, cpu, rss)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in info:
            out[pid] = info[pid]
        todo += children.get(pid, [])
    return out


class Sampler:
    """Peak RSS of the JVM and of all Python workers together, and CPU seconds of the whole process tree,
    between start() and stop()."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.cpu: dict[int, list[float]] = {}
        self.peak = {"jvm": 0, "python_workers": 0}
        self._stop = threading.Event()

    def _sample(self) -> None:
        tree = _proc_tree(os.getpid())
        jvm = sum(rss for kind, _, rss in tree.values() if kind == "jvm")
        workers = sum(rss for kind, _, rss in tree.values() if kind == "python_worker")
        self.peak["jvm"] = max(self.peak["jvm"], jvm)
        self.peak["python_workers"] = max(self.peak["python_workers"], workers)
        for pid, (_, cpu, _) in tree.items():
            first_last = self.cpu.setdefault(pid, [cpu, cpu])
            first_last[1] = cpu

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    def cpu_seconds(self) -> float:
        return sum(last - first for first, last in self.cpu.values())


def run(work: Path) -> None:
    """`lakesift run` over the pool's crawl files, as a user runs it, every stage measured."""
    import contextlib

    from jobs import pipeline
    from jobs.runtime.config import JobConfig
    from jobs.runtime.spark import get_spark

    manifest = json.loads((work / "pool_manifest.json").read_text())
    home = str(work / "lakehouse")
    shutil.rmtree(home, ignore_errors=True)
    spark = get_spark(JobConfig(home=home), app_name="bench-pool")
    text = SHARED / "text"
    cfg = pipeline.Config(
        home=home, inputs=tuple(manifest["crawl_files"]), recipes=pool_recipes(),
        reference_text=tuple(str(text / n) for n in ("wikitext-2_valid.txt", "nltk_inaugural.zip",
                                                      "nltk_state_union.zip", "ccnet")),
        labels=str(SHARED / "quality-labels" / "dclm-human-dev.jsonl"), evals=str(SHARED / "evals"),
        dedup_scope="global")          # the pool's two crawls are deduplicated across each other
    details: dict = {}

    @contextlib.contextmanager
    def measured(step):
        with Sampler() as sampler:
            started = time.perf_counter()
            yield
        details[step.label] = {"wall_seconds": time.perf_counter() - started, "cpu_seconds": sampler.cpu_seconds(),
                               "peak_jvm_bytes": sampler.peak["jvm"],
                               "peak_python_workers_bytes": sampler.peak["python_workers"],
                               "peak_bytes": max(sampler.peak.values())}

    started_all = time.perf_counter()
    results = pipeline.run(spark, cfg, progress=sys.stdout, around=measured)
    total = time.perf_counter() - started_all
    stages, funnels, exports, trained = [], {}, {}, {}
    for r in results:
        d = details[r.label]
        d.update(rows_in=r.report.rows_in, rows_out=r.report.rows_out)
        stages.append([r.label, r.report.rows_in, r.report.rows_out, round(d["wall_seconds"], 1),
                       round(d["cpu_seconds"], 1), round(d["peak_jvm_bytes"] / 2**30, 2),
                       round(d["peak_python_workers_bytes"] / 2**30, 2)])
        s = r.summary
        if r.label.startswith("select "):
            funnels[s["recipe"]] = {k: s[k] for k in ("documents_in", "documents_out", "tokens_in", "tokens_out",
                                                      "funnel", "corpus_version")}
            print(s["funnel_table"], flush=True)
        elif r.label.startswith("export "):
            exports[s["recipe"]] = {"manifest": f"{s['output']}/manifest.json", "documents": s["documents"],
                                    "estimated_tokens": s["estimated_tokens"], "table_version": s["table_version"]}
        elif r.label == "train-quality":
            trained = s
    peak = max(d["peak_bytes"] for d in details.values())
    report("pool", ["stage", "rows in", "rows out", "wall s", "CPU s", "peak JVM GiB", "peak Python GiB"], stages, {
        "note": NOTE, "pool": {k: manifest[k] for k in ("records", "sources", "real_warc_files", "evaluation_documents")},
        "stages": details, "funnels": funnels, "exports": exports, "total_seconds": total,
        "quality_model": {k: trained.get(k) for k in ("labels_cv_roc_auc", "labels_cv_roc_auc_low", "labels_cv_roc_auc_high", "roc_auc")},
        "command": "python -m bench.pool build && python -m bench.pool run  (lakesift run --input <the pool's crawl "
                   "files> --recipes <every shipped recipe> --reference-text ... --labels ... --evals ... "
                   "--dedup-scope global)",
        "targets": {"whole pipeline <= 30 min": total <= 1800, "no stage above 6 GB": peak <= 6 * 2**30},
    })
    print(f"whole pipeline {total / 60:.1f} min; largest stage peak {peak / 2**30:.2f} GiB")


def main(argv: list[str] | None = None) -> None:
    """`python -m bench.pool build|run|all`; from `python -m bench` (no arguments): all."""
    argv = ["all"] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.pool", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("build", "run", "all"))
    parser.add_argument("--work", default=str(WORK), help=f"working folder (default {WORK})")
    parser.add_argument("--limit", type=int, help="blog posts to take (a small pool for trying things out)")
    args = parser.parse_args(argv)
    work = Path(args.work)
    if args.action in ("build", "all"):
        m = build(work, args.limit)
        print(json.dumps({k: m[k] for k in ("records", "sources", "evaluation_documents", "build_seconds")}, indent=1))
    if args.action in ("run", "all"):
        run(work)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
