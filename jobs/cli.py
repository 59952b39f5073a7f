"""`lakesift`: the command line. The only place arguments are parsed; each command builds a job Config
and calls the job's run(spark, cfg)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

COMMON_HELP = """
common options (accepted by every command, before or after it):
  --home DIR            lakehouse folder (default: $LAKESIFT_HOME or ./lakehouse)
  --catalog NAME        use a metastore catalog (Unity Catalog on Databricks) instead of the folder
  --schema-prefix P     prefix for the bronze/silver/gold schema names (e.g. dev_)
  --tracking-uri URI    MLflow tracking URI (default: sqlite store in the lakehouse)
  --experiment NAME     MLflow experiment (default: lakesift)
"""


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The lakehouse options; on subcommands their defaults are suppressed so values given before the
    command are not overwritten."""
    d = argparse.SUPPRESS if suppress else None
    g = parser.add_argument_group("lakehouse")
    g.add_argument("--home", default=d, help="lakehouse folder (default: $LAKESIFT_HOME or ./lakehouse)")
    g.add_argument("--catalog", default=d, help="metastore catalog, e.g. Unity Catalog (default: the local folder)")
    g.add_argument("--schema-prefix", default=d, help="prefix for schema names, e.g. dev_")
    g.add_argument("--tracking-uri", default=d, help="MLflow tracking URI (default: <home>/mlflow.db)")
    g.add_argument("--experiment", default=d, help="MLflow experiment name (default: lakesift)")


def _base(args) -> dict:
    out = {}
    for key in ("home", "catalog", "schema_prefix", "tracking_uri", "experiment"):
        value = getattr(args, key, None)
        if value is not None:
            out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakesift",
        description="Spark-native jobs that turn Common Crawl into curated LLM-pretraining corpora over Delta "
                    "tables, tracked in MLflow.",
        epilog=COMMON_HELP + "\nRun `lakesift COMMAND --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser, suppress=False)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, func: Callable) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p, suppress=True)
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.set_defaults(func=func)
        return p

    p = command("demo", "generate a sample crawl and run every stage on it (the main job)", cmd_demo)
    p.add_argument("--pages", type=int, default=400, help="HTML pages in the sample crawl (default 400)")
    p.add_argument("--seed", type=int, default=7, help="seed of the sample crawl (default 7)")

    p = command("ingest", "WARC/ARC files -> bronze.warc_records (+ bronze.ingest_errors)", cmd_ingest)
    p.add_argument("--input", "-i", nargs="+", required=True, metavar="PATH",
                   help="files, directories, globs or s3:// https:// dbfs:/ URLs")
    p.add_argument("--crawl", help="crawl id for these files (default: warcinfo isPartOf, else CC-MAIN-* in the path)")
    p.add_argument("--max-payload-bytes", type=int, default=5 * 1024 * 1024,
                   help="keep at most this many bytes of each body (default 5 MiB); longer ones are flagged truncated")
    p.add_argument("--force", action="store_true", help="read files again that were already ingested (replaces their rows)")

    p = command("extract", "bronze.warc_records -> silver.documents and silver.signals_heuristic", cmd_extract)
    p.add_argument("--crawl", action="append", default=[], help="crawl to process (repeatable; default: all)")
    p.add_argument("--extractor", choices=("resiliparse", "trafilatura"), default="resiliparse",
                   help="main-content extractor (default resiliparse)")

    p = command("dedup", "silver.documents -> silver.signals_minhash and silver.duplicates (exact, URL, MinHash-LSH)",
                cmd_dedup)
    p.add_argument("--crawl", action="append", default=[], help="crawl to deduplicate (repeatable; default: all)")
    p.add_argument("--scope", choices=("crawl", "global"), default="crawl",
                   help="crawl: clusters within each crawl (default); global: across every crawl signed so far, "
                        "reusing stored signatures (incremental)")
    p.add_argument("--ngram", type=int, default=5, help="words per shingle (default 5)")
    p.add_argument("--bands", type=int, default=14, help="LSH bands (default 14)")
    p.add_argument("--rows", type=int, default=8, help="rows per band (default 8; num_perm = bands x rows)")
    p.add_argument("--threshold", type=float, default=0.8, help="Jaccard similarity of near duplicates (default 0.8)")
    p.add_argument("--auto-bands", action="store_true",
                   help="choose bands x rows for --threshold within bands*rows permutations")
    p.add_argument("--verify", choices=("exact", "estimate", "none"), default="exact",
                   help="keep an LSH candidate pair when its exact shingle Jaccard (default), or its signature "
                        "estimate, reaches --threshold; none keeps every candidate")
    p.add_argument("--seed", type=int, default=1, help="permutation seed (default 1)")
    p.add_argument("--recompute", action="store_true", help="compute signatures again even where they exist")

    p = command("decontaminate", "n-gram overlap of documents with evaluation sets -> silver.signals_contamination",
                cmd_decontaminate)
    p.add_argument("--evals", nargs="+", default=[], metavar="PATH",
                   help="JSONL evaluation files or folders (default: $LAKESIFT_EVALS, else ../shared/data/evals)")
    p.add_argument("--ngram", type=int, default=13, help="words per n-gram (default 13)")
    p.add_argument("--crawl", action="append", default=[], help="crawl to check (repeatable; default: all)")

    p = command("train-quality", "train the quality model (fastText, reference LMs, heuristics, length; optionally "
                "fitted to human labels) and register it in MLflow", cmd_train_quality)
    p.add_argument("--name", required=True, help="registered model name (gets the alias --alias)")
    p.add_argument("--positives", nargs="+", required=True, metavar="PATH|TABLE",
                   help="reference-quality text: text files, folders, zip archives, JSONL (text field) or a table")
    p.add_argument("--negatives", nargs="+", default=["silver.documents"], metavar="PATH|TABLE",
                   help="crawled text (default: a seeded sample of silver.documents, as many as positives)")
    p.add_argument("--unit", choices=("block", "file"), default="block",
                   help="text files: one document per blank-line-separated block (default) or per file")
    p.add_argument("--min-words", type=int, default=10)
    p.add_argument("--max-examples", type=int, default=100_000, help="per class (default 100000)")
    p.add_argument("--holdout", type=float, default=0.1, help="held-out fraction per class (default 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alias", default="champion")
    p.add_argument("--labels", metavar="FILE.jsonl",
                   help='human quality judgments, lines {"text": ..., "label": 0|1} (at least 20, both classes): '
                        "the combiner learns from them (default: from held-out reference-versus-web examples)")
    p.add_argument("--components", default=",".join(quality_components()),
                   help=f"comma-separated, of {', '.join(quality_components(all_=True))} "
                        "(embedding needs MiniLM: slow on CPU) (default: %(default)s)")
    for flag, kind, default, text in (("--lr", float, 0.1, "learning rate"), ("--epoch", int, 5, "epochs"),
                                      ("--dim", int, 64, "vector size"), ("--word-ngrams", int, 2, "word n-grams"),
                                      ("--min-count", int, 1, "minimal word count"), ("--bucket", int, 200_000, "hash buckets")):
        p.add_argument(flag, type=kind, default=default, help=f"fastText {text} (default {default})")
    p.add_argument("--loss", choices=("softmax", "hs"), default="softmax")

    def runner_options(p) -> None:
        p.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default 64)")
        p.add_argument("--max-tokens", type=int, default=256,
                       help="tokens scored per text: encoder word pieces, or bytes for the byte LMs (default 256)")
        p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                       help="auto: CUDA when present (bf16), else CPU; cuda fails without a GPU")

    p = command("classify", "score documents with a quality classifier -> silver.signals_quality", cmd_classify)
    p.add_argument("--model", required=True, help="models:/NAME@ALIAS, models:/NAME/VERSION (from train-quality), or a fastText model file")
    p.add_argument("--crawl", action="append", default=[], help="crawl to score (repeatable; default: all)")

    p = command("train-neural", "train a neural scorer (embedding classifier head or reference LM) and register it",
                cmd_train_neural)
    p.add_argument("--kind", choices=("embedding", "reference"), required=True,
                   help="embedding: logistic head on sentence embeddings, compared with fastText on the same split; "
                        "reference: byte-level LM on --positives (its loss scores documents)")
    p.add_argument("--name", required=True, help="registered model name (gets the alias --alias)")
    p.add_argument("--positives", nargs="+", required=True, metavar="PATH|TABLE", help="reference-quality text")
    p.add_argument("--negatives", nargs="+", default=["silver.documents"], metavar="PATH|TABLE",
                   help="embedding: crawled text (default: a seeded sample of silver.documents)")
    p.add_argument("--encoder", help="sentence-transformers folder (default: all-MiniLM-L6-v2 from the pinned wheel)")
    p.add_argument("--max-examples", type=int, default=20_000, help="per class (default 20000)")
    p.add_argument("--holdout", type=float, default=0.1, help="held-out fraction per class (default 0.1)")
    p.add_argument("--scale", choices=("tiny", "small", "base", "large"), default="tiny", help="reference LM size")
    p.add_argument("--tokens", type=int, help="reference LM token budget (default: the scale's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alias", default="champion")
    runner_options(p)

    p = command("score-neural", "score documents with a neural scorer -> silver.signals_neural", cmd_score_neural)
    p.add_argument("--scorer", choices=("embedding", "reference", "learnability"), required=True)
    p.add_argument("--model", required=True,
                   help="models:/NAME@ALIAS or models:/NAME/VERSION (learnability: the learner LM)")
    p.add_argument("--reference", help="learnability: the reference LM, models:/NAME@ALIAS")
    p.add_argument("--crawl", action="append", default=[], help="crawl to score (repeatable; default: all)")
    runner_options(p)

    p = command("select", "apply a recipe -> gold.corpus (new version) and gold.rejections", cmd_select)
    p.add_argument("--recipe", required=True, help="shipped recipe name (see `lakesift recipes`) or a YAML file")
    p.add_argument("--signal", action="append", default=[], metavar="FAMILY.OPTION=VALUE",
                   help="override a recipe's signal option, e.g. quality.model=my_classifier (repeatable)")
    p.add_argument("--crawl", action="append", default=[], help="crawl to select from (repeatable; default: all)")

    p = command("export", "write a recipe's corpus as training shards with a manifest", cmd_export)
    p.add_argument("--recipe", required=True)
    p.add_argument("--format", choices=("jsonl.gz", "parquet"), default="jsonl.gz")
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--version", type=int, help="gold.corpus version (default: the latest)")
    p.add_argument("--output", help="folder (default: <home>/exports/<recipe>/v<version>)")

    def proxy_options(p, evaluating: bool) -> None:
        p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                       help="auto: CUDA when present (bf16), else CPU; cuda fails without a GPU")
        p.add_argument("--heldout", nargs="+", default=[], metavar="[NAME=]FILE",
                       help="held-out evaluation domains, each measured and reported on its own "
                            "(default: ../shared/data/text/wikitext-2_test.txt)")
        if evaluating:
            p.add_argument("--evals", help="folder of evaluation JSONL files (default: ../shared/data/evals)")
            p.add_argument("--limit", type=int, default=200, help="items per task, a seeded sample (default 200; 0: all)")

    p = command("train-proxy", "train a proxy language model on a recipe's corpus (MLflow run)", cmd_train_proxy)
    p.add_argument("--recipe", required=True)
    p.add_argument("--version", type=int, help="gold.corpus version (default: the latest)")
    p.add_argument("--scale", choices=("tiny", "small", "base", "large"), default="tiny",
                   help="model size and token budget preset (tiny: CPU minutes; others: GPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tokens", type=int, help="token budget (default: the scale's multiplier x parameters)")
    p.add_argument("--max-epochs", type=float, default=8.0, help="most repetitions of the corpus allowed (default 8)")
    proxy_options(p, evaluating=False)

    p = command("eval-proxy", "evaluate a proxy model: held-out bits per byte and in-context tasks", cmd_eval_proxy)
    p.add_argument("--run", required=True, metavar="RUN_ID", help="MLflow run id of a train-proxy run")
    p.add_argument("--task", action="append", default=[], help="task to run (repeatable; default: all present)")
    proxy_options(p, evaluating=True)

    p = command("ablate", "train and evaluate proxy models per recipe and seed; compare them", cmd_ablate)
    p.add_argument("--recipes", nargs="+", required=True, help="recipes to compare; the first is the baseline")
    p.add_argument("--scale", choices=("tiny", "small", "base", "large"), default="tiny")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--tokens", type=int, help="token budget per run (default: the scale's)")
    p.add_argument("--max-epochs", type=float, default=8.0)
    p.add_argument("--random-like", metavar="RECIPE",
                   help="add an arm: a random subset of the baseline as large (in tokens) as RECIPE's corpus")
    p.add_argument("--exclude", nargs="+", default=[], metavar="DOMAIN",
                   help="held-out domains reported but left out of the deciding mean (e.g. the one a quality "
                        "classifier took its positives from)")
    proxy_options(p, evaluating=True)

    p = command("recipes", "list the shipped recipes, or print one", cmd_recipes)
    p.add_argument("name", nargs="?", help="print this recipe's YAML")

    p = command("sql", "run a SQL query over the lakehouse tables", cmd_sql)
    p.add_argument("query", help='e.g. "SELECT language, count(*) FROM silver.documents GROUP BY 1"')
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (aligned, for people), csv, or json (one object per line)")
    p.add_argument("--max-rows", type=int, default=100, help="rows shown in table format (default 100)")

    p = command("tables", "list the lakehouse tables with their row counts and Delta versions", cmd_tables)

    p = command("ui", "serve the MLflow UI for the local store on 127.0.0.1", cmd_ui)
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; 0.0.0.0 exposes it)")

    p = command("views", "create the views for common questions (automatic for a local lakehouse) and list them", cmd_views)

    p = command("serve-sql", "serve the lakehouse tables over JDBC/ODBC (Spark Thrift server) for BI tools and beeline",
                cmd_serve_sql)
    p.add_argument("--port", type=int, default=10000)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; 0.0.0.0 exposes it)")

    p = command("spark-sql", "the spark-sql shell with the lakehouse's tables and views registered", cmd_spark_sql)
    p.add_argument("shell_args", nargs=argparse.REMAINDER, metavar="-- ARGS",
                   help='passed to spark-sql, e.g. -- -e "SELECT count(*) FROM silver.documents"')

    p = command("pack-env", "pack the executors' Python environment for spark-submit --archives (venv-pack)", cmd_pack_env)
    p.add_argument("--output", help="archive (default dist/lakesift-env.tar.gz)")

    p = command("submit", "run a lakesift command on a Spark cluster with spark-submit", cmd_submit)
    p.add_argument("--master", required=True, help="e.g. spark://HOST:7077, yarn, k8s://https://HOST:443")
    p.add_argument("--env-archive", help="packed executor environment (default dist/lakesift-env.tar.gz)")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark conf (repeatable)")
    p.add_argument("cli_args", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS",
                   help="the lakesift command to run, e.g. -- --home /shared/lakehouse demo")

    command("setup", "download Delta Lake's jars from Maven Central into the local cache (once)", cmd_setup)
    return parser


# ------------------------------------------------------------------------------------------- commands

def _spark(cfg):
    from jobs.runtime.spark import get_spark

    return get_spark(cfg, app_name="lakesift")


def _task_value(spark, key: str, value: str) -> None:
    """In a Databricks job, publish a value to later tasks ({{tasks.TASK.values.KEY}}); elsewhere nothing."""
    if "DATABRICKS_RUNTIME_VERSION" not in os.environ:
        return
    try:
        from pyspark.dbutils import DBUtils

        DBUtils(spark).jobs.taskValues.set(key, value)
    except Exception as exc:                       # not a job run, or an older runtime
        logging.getLogger("lakesift").warning("could not set task value %s: %s", key, exc)


def cmd_setup(args) -> int:
    from jobs.runtime import jars

    for path in jars.fetch():
        print(path)
    return EXIT_OK


def cmd_ingest(args) -> int:
    from jobs.bronze import ingest_warc
    from jobs.runtime import output

    cfg = ingest_warc.Config(**_base(args), inputs=tuple(args.input), crawl=args.crawl,
                             max_payload_bytes=args.max_payload_bytes, force=args.force)
    files = ingest_warc.expand_inputs(cfg.inputs)
    print(f"ingest: {len(files)} file(s)", file=sys.stderr)
    summary = ingest_warc.run(_spark(cfg), cfg)
    rows = [(os.path.basename(f) or f, c["responses"], c["html"], c["non_html"], c["non_http_skipped"], c["errors"])
            for f, c in sorted(summary["per_file"].items())]
    if rows:
        output.table(("file", "responses", "html", "non_html", "non_http", "unreadable"), rows)
    print(f"{summary['files_read']} file(s) read, {summary['files_already_ingested']} already ingested "
          f"(--force to read again); MLflow run {summary['run_id']}")
    return EXIT_OK


def cmd_extract(args) -> int:
    from jobs.silver import compute_heuristics, extract_documents

    base = _base(args)
    cfg = extract_documents.Config(**base, crawls=tuple(args.crawl), extractor=args.extractor)
    spark = _spark(cfg)
    print("extract: documents …", file=sys.stderr)
    docs = extract_documents.run(spark, cfg)
    print(f"silver.documents: {docs['rows_out_documents']} documents from {docs['rows_in_html']} HTML responses "
          f"({docs['rows_skipped_non_html']} non-HTML skipped, {docs['rows_out_extract_errors']} with extract errors) "
          f"in crawls {', '.join(docs['crawls']) or '-'}")
    print("extract: heuristic signals …", file=sys.stderr)
    sig = compute_heuristics.run(spark, compute_heuristics.Config(**base, crawls=tuple(docs["crawls"])))
    print(f"silver.signals_heuristic: {sig['rows_out_signals']} rows")
    return EXIT_OK


def cmd_dedup(args) -> int:
    from jobs.silver import cluster_duplicates, compute_minhash

    base = _base(args)
    shared = dict(ngram=args.ngram, bands=args.bands, rows=args.rows, threshold=args.threshold,
                  auto_bands=args.auto_bands, seed=args.seed)
    cfg = compute_minhash.Config(**base, **shared, crawls=tuple(args.crawl), recompute=args.recompute)
    spark = _spark(cfg)
    print(f"dedup: signatures ({cfg.minhash().tag}) …", file=sys.stderr)
    sig = compute_minhash.run(spark, cfg)
    print(f"silver.signals_minhash: {sig['rows_out_signatures']} new signatures "
          f"(crawls {', '.join(sig['crawls_signed']) or 'none: all up to date'})")
    print(f"dedup: clusters (scope {args.scope}) …", file=sys.stderr)
    dup = cluster_duplicates.run(spark, cluster_duplicates.Config(
        **base, **shared, crawls=tuple(args.crawl), scope=args.scope, verify=args.verify))
    print(f"silver.duplicates: {dup['rows_out_duplicates']} documents, {dup['clusters']} clusters of duplicates "
          f"(largest {dup['largest_cluster']}), {dup['rows_out_representatives']} representatives, "
          f"{dup['rows_dropped_by_dedup']} duplicates to drop; {dup['cc_rounds']} component rounds")
    return EXIT_OK


def cmd_decontaminate(args) -> int:
    from jobs.silver import detect_contamination

    cfg = detect_contamination.Config(**_base(args), evals=tuple(args.evals), ngram=args.ngram, crawls=tuple(args.crawl))
    summary = detect_contamination.run(_spark(cfg), cfg)
    print(f"silver.signals_contamination ({summary['version']}): {summary['rows_contaminated']} of "
          f"{summary['rows_out_signals']} documents share a {args.ngram}-gram with {', '.join(summary['eval_sets'])}"
          + (f"; {summary['malformed_eval_lines']} malformed evaluation lines skipped" if summary["malformed_eval_lines"] else ""))
    return EXIT_OK


def quality_components(all_: bool = False) -> tuple[str, ...]:
    from udfs import quality

    return quality.COMPONENTS if all_ else quality.DEFAULT_COMPONENTS


def cmd_train_quality(args) -> int:
    from jobs.classifiers import train_quality

    cfg = train_quality.Config(
        **_base(args), name=args.name, positives=tuple(args.positives), negatives=tuple(args.negatives),
        unit=args.unit, min_words=args.min_words, max_examples=args.max_examples, holdout=args.holdout, seed=args.seed,
        alias=args.alias, lr=args.lr, epoch=args.epoch, dim=args.dim, word_ngrams=args.word_ngrams,
        min_count=args.min_count, bucket=args.bucket, loss=args.loss, labels=args.labels,
        components=tuple(c.strip() for c in args.components.split(",") if c.strip()))
    s = train_quality.run(_spark(cfg), cfg)
    print(f"models:/{s['model']}@{s['alias']} = version {s['version']} ({', '.join(s['components'])}): components "
          f"trained on {s['train_positives']} positive and {s['train_negatives']} negative documents; held out "
          f"reference versus web: ROC-AUC {s['roc_auc']:.3f} ({s['examples']} documents)")
    if s["trained_on"] == "labels":
        print(f"combiner fitted to {args.labels}: cross-validated ROC-AUC {s['labels_cv_roc_auc']:.3f} "
              f"(95% interval {s['labels_cv_roc_auc_low']:.3f}-{s['labels_cv_roc_auc_high']:.3f})")
    print(f"MLflow run {s['run_id']}")
    return EXIT_OK


def cmd_classify(args) -> int:
    from jobs.classifiers import classify_quality

    cfg = classify_quality.Config(**_base(args), model=args.model, crawls=tuple(args.crawl))
    s = classify_quality.run(_spark(cfg), cfg)
    print(f"silver.signals_quality: {s['rows_out_scores']} documents scored by {s['model']} v{s['model_version']} "
          f"(mean score {s['mean_score']:.3f}; {s['rows_out_without_text']} without text)")
    return EXIT_OK


def cmd_train_neural(args) -> int:
    from jobs.classifiers import train_neural

    cfg = train_neural.Config(
        **_base(args), kind=args.kind, name=args.name, positives=tuple(args.positives), negatives=tuple(args.negatives),
        encoder=args.encoder, max_examples=args.max_examples, holdout=args.holdout, scale=args.scale, tokens=args.tokens,
        seed=args.seed, alias=args.alias, batch_size=args.batch_size, max_tokens=args.max_tokens, device=args.device)
    s = train_neural.run(_spark(cfg), cfg)
    if s["kind"] == "embedding":
        detail = (f"held out: ROC-AUC {s['roc_auc']:.3f} (fastText on the same split {s['fasttext_roc_auc']:.3f}), "
                  f"precision {s['precision']:.3f}, recall {s['recall']:.3f} ({s['examples']} documents)")
    else:
        detail = f"held-out {s['heldout_bpb']:.4f} bits per byte after {s['tokens']:,} tokens"
    print(f"models:/{s['model']}@{s['alias']} = version {s['version']} ({s['kind']}): {detail}; MLflow run {s['run_id']}")
    return EXIT_OK


def cmd_score_neural(args) -> int:
    from jobs.classifiers import score_neural

    cfg = score_neural.Config(**_base(args), scorer=args.scorer, model=args.model, reference=args.reference,
                              crawls=tuple(args.crawl), batch_size=args.batch_size, max_tokens=args.max_tokens,
                              device=args.device)
    s = score_neural.run(_spark(cfg), cfg)
    print(f"silver.signals_neural: {s['rows_out_scores']} documents scored by {s['scorer']} {s['model']} "
          f"v{s['model_version']} (mean score {s['mean_score']:.4f}; {s['rows_out_without_text']} without text)")
    return EXIT_OK


def cmd_select(args) -> int:
    from jobs.gold import select_corpus

    cfg = select_corpus.Config(**_base(args), recipe=args.recipe, overrides=tuple(args.signal), crawls=tuple(args.crawl))
    s = select_corpus.run(_spark(cfg), cfg)
    print(s["funnel_table"], end="")
    cuts = ", ".join(f"{k} >= {v:.4g}" for k, v in s["thresholds"].items() if v is not None)
    print(f"gold.corpus v{s['corpus_version']}: recipe {s['recipe']} ({s['fingerprint']}) kept {s['documents_out']} of "
          f"{s['documents_in']} documents, {s['tokens_out']:,} of {s['tokens_in']:,} estimated tokens"
          + (f"; thresholds {cuts}" if cuts else ""))
    return EXIT_OK


def cmd_export(args) -> int:
    from jobs.gold import export_shards

    cfg = export_shards.Config(**_base(args), recipe=args.recipe, format=args.format, shards=args.shards,
                               version=args.version, output=args.output)
    s = export_shards.run(_spark(cfg), cfg)
    print(f"{s['documents']} documents ({s['estimated_tokens']:,} estimated tokens) of recipe {s['recipe']} "
          f"({s['recipe_fingerprint']}, gold.corpus v{s['table_version']}) in {args.shards} {args.format} shards: "
          f"{s['output']} (manifest.json)")
    return EXIT_OK


def cmd_train_proxy(args) -> int:
    from jobs.proxy import train_proxy

    cfg = train_proxy.Config(**_base(args), recipe=args.recipe, version=args.version, scale=args.scale, seed=args.seed,
                             tokens=args.tokens, max_epochs=args.max_epochs, device=args.device, heldout=tuple(args.heldout))
    print(f"train-proxy: {args.recipe}, scale {args.scale}, seed {args.seed} …", file=sys.stderr)
    spark = _spark(cfg)
    s = train_proxy.run(spark, cfg, progress=lambda m: print(f"train-proxy: {m}", file=sys.stderr, flush=True))
    _task_value(spark, "run_id", s["run_id"])
    print(f"run {s['run_id']}: {s['parameters']:,}-parameter model, {s['tokens']:,} tokens of {s['recipe']} "
          f"(gold.corpus v{s['corpus_version']}, {s['epochs']:.2f} epochs) on {s['device']} at {s['tokens_per_second']:,.0f} "
          f"tokens/s; held-out {s['final_heldout_bpb']:.4f} bits per byte\n"
          f"evaluate it: lakesift eval-proxy --run {s['run_id']}")
    return EXIT_OK


def cmd_eval_proxy(args) -> int:
    from jobs.proxy import eval_proxy

    cfg = eval_proxy.Config(**_base(args), run=args.run, evals=args.evals, tasks=tuple(args.task),
                            limit=args.limit or None, heldout=tuple(args.heldout), device=args.device)
    s = eval_proxy.run(_spark(cfg), cfg)
    from jobs.runtime import output

    rows = [(task, r["items"], r.get("acc"), r.get("acc_norm"), r.get("centered")) for task, r in sorted(s["tasks"].items())]
    if rows:
        output.table(("task", "items", "accuracy", "length-normalised", "centered"), rows)
    print(f"{s['recipe']}: held-out {s['heldout_bpb']:.4f} bits per byte"
          + (f", CORE-like {s['core_like']:.4f}" if s["core_like"] is not None else ", no evaluation sets found")
          + (f"; {s['malformed_lines']} malformed evaluation lines skipped" if s["malformed_lines"] else "")
          + (f"; {s['skipped_too_long']} items whose answer exceeds the model's context left out"
             if s["skipped_too_long"] else "")
          + f"; gold.proxy_evals v{s['proxy_evals_version']}")
    return EXIT_OK


def cmd_ablate(args) -> int:
    from jobs.proxy import ablate

    cfg = ablate.Config(**_base(args), recipes=tuple(args.recipes), scale=args.scale, seeds=args.seeds, tokens=args.tokens,
                        device=args.device, limit=args.limit or None, evals=args.evals, heldout=tuple(args.heldout),
                        max_epochs=args.max_epochs, random_like=args.random_like, excluded=tuple(args.exclude))
    s = ablate.run(_spark(cfg), cfg, progress=lambda m: print(f"ablate: {m}", file=sys.stderr, flush=True))
    print(s["table"], end="")
    print(f"MLflow parent run {s['run_id']} with {len(s['children'])} child runs; plot heldout_bpb_vs_tokens.png")
    return EXIT_OK


def cmd_recipes(args) -> int:
    from importlib import resources

    from jobs.gold import recipe as R

    if args.name:
        print((resources.files("jobs.gold") / "recipes" / f"{args.name}.yaml").read_text()
              if args.name in R.shipped_recipes() else open(args.name).read(), end="")
        return EXIT_OK
    from jobs.runtime import output

    rows = []
    for name in R.shipped_recipes():
        r = R.load(name)
        rows.append((name, len(r.predicates), ", ".join(r.families()) or "-", r.description))
    output.table(("recipe", "predicates", "signals", "description"), rows, width=90)
    return EXIT_OK


def cmd_sql(args) -> int:
    from jobs.runtime import output
    from jobs.runtime.config import JobConfig

    cfg = JobConfig(**_base(args))
    df = _spark(cfg).sql(args.query)
    columns = df.columns
    if args.format == "table":
        rows = df.limit(args.max_rows + 1).collect()
        output.table(columns, rows[: args.max_rows])
        if len(rows) > args.max_rows:
            print(f"… more rows (showing {args.max_rows}; --max-rows N or --format csv|json for all)", file=sys.stderr)
    elif args.format == "csv":
        output.csv_rows(columns, df.toLocalIterator())
    else:
        output.json_lines(columns, df.toLocalIterator())
    return EXIT_OK


def cmd_tables(args) -> int:
    from jobs.runtime import output
    from jobs.runtime.config import JobConfig
    from jobs.runtime.tables import register_lakehouse

    cfg = JobConfig(**_base(args))
    spark = _spark(cfg)
    rows = []
    for name in register_lakehouse(spark, cfg):
        detail = spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").first()
        rows.append((name, spark.table(name).count(), detail["version"], str(detail["timestamp"])))
    output.table(("table", "rows", "version", "last write"), rows)
    return EXIT_OK


def cmd_ui(args) -> int:
    import subprocess

    from jobs.runtime.config import JobConfig
    from jobs.runtime.tracking import artifact_root, client_and_experiment, tracking_uri

    cfg = JobConfig(**_base(args))
    client_and_experiment(cfg)          # creates the store on first use, so the UI never shows an empty error
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri(cfg),
           "--host", args.host, "--port", str(args.port)]
    if artifact_root(cfg):
        cmd += ["--default-artifact-root", artifact_root(cfg)]
    print(f"MLflow UI on http://{args.host}:{args.port} (Ctrl-C stops it)", file=sys.stderr)
    return subprocess.call(cmd)


def _passthrough(values: list[str]) -> list[str]:
    """Arguments after `--`, handed on unchanged (only the separator itself is dropped)."""
    return values[1:] if values[:1] == ["--"] else list(values)


def cmd_views(args) -> int:
    from jobs.runtime import output
    from jobs.runtime.config import JobConfig
    from jobs.runtime.tables import create_views
    from schemas.views import VIEWS

    cfg = JobConfig(**_base(args))
    made = set(create_views(_spark(cfg), cfg))
    output.table(("view", "reads", "answers"), [
        (v.fullname if v.fullname in made else f"{v.fullname} (not created: a table is missing)",
         ", ".join(f"{a}.{b}" for a, b in v.tables()), v.comment) for v in VIEWS], width=70)
    return EXIT_OK


def cmd_serve_sql(args) -> int:
    import signal
    import threading

    from jobs.runtime.config import JobConfig

    # HiveServer2 reads its bind address and port from these variables; the JVM started below inherits them.
    os.environ["HIVE_SERVER2_THRIFT_BIND_HOST"] = args.host
    os.environ["HIVE_SERVER2_THRIFT_PORT"] = str(args.port)
    cfg = JobConfig(**_base(args))
    spark = _spark(cfg)
    jvm = spark.sparkContext._jvm
    jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithContext(spark._jsparkSession.sqlContext())
    url = f"jdbc:hive2://{args.host}:{args.port}/"
    print(f"JDBC endpoint {url} (Spark Thrift server; tables and views of {cfg.catalog or cfg.home}).\n"
          f"  beeline -u {url} -e \"SHOW TABLES IN silver\"\nCtrl-C (or SIGTERM) stops it.", file=sys.stderr, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    spark.stop()
    return EXIT_OK


def cmd_spark_sql(args) -> int:
    from jobs.runtime.config import JobConfig
    from jobs.runtime.spark import spark_sql_command

    cfg = JobConfig(**_base(args))
    cmd, env = spark_sql_command(cfg, _passthrough(args.shell_args))
    os.execvpe(cmd[0], cmd, env)


def cmd_pack_env(args) -> int:
    from pathlib import Path

    from jobs import submit

    out = submit.pack_environment(Path(args.output) if args.output else submit.DEFAULT_ARCHIVE,
                                  progress=lambda m: print(f"pack-env: {m}", file=sys.stderr, flush=True))
    print(f"{out} ({out.stat().st_size / 1e6:.0f} MB): pass it to `lakesift submit --env-archive`")
    return EXIT_OK


def cmd_submit(args) -> int:
    from pathlib import Path

    from jobs import submit

    cli_args = _passthrough(args.cli_args)
    if not cli_args:
        raise ValueError("give the lakesift command to run after --, e.g. lakesift submit --master spark://h:7077 -- demo")
    archive = Path(args.env_archive) if args.env_archive else submit.DEFAULT_ARCHIVE
    argv, env = submit.submit_command(args.master, archive, cli_args, args.conf)
    import subprocess

    return subprocess.call(argv, env=env)


def cmd_demo(args) -> int:
    from jobs import pipeline
    from jobs.runtime import output
    from jobs.runtime.tracking import tracking_uri

    cfg = pipeline.Config(**_base(args), pages=args.pages, seed=args.seed)
    spark = _spark(cfg)
    results = pipeline.run(spark, cfg)
    print()
    output.table(("stage", "rows in", "rows out", "seconds", "notes"),
                 [(r.stage, r.rows_in, r.rows_out, round(r.seconds, 1), r.note) for r in results], width=80)
    print(f"\nLakehouse: {cfg.home}\n"
          f"Query it:   lakesift sql \"SELECT language, count(*) AS docs FROM silver.documents GROUP BY 1 ORDER BY 2 DESC\"\n"
          f"            lakesift tables\n"
          f"Watch it:   lakesift ui   (MLflow at http://127.0.0.1:5000; store {tracking_uri(cfg)})")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------- main

def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for noisy in ("py4j", "alembic", "urllib3", "trafilatura", "htmldate", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # PySpark logs every analysis error with the whole Java stack; we print the error's first line instead.
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(getattr(args, "verbose", False))
    if sys.stderr.isatty():
        os.environ.setdefault("LAKESIFT_CONSOLE_PROGRESS", "1")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:      # RecipeError is a ValueError
        print(f"lakesift {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"lakesift {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from jobs.runtime.spark import SetupError

        if isinstance(exc, SetupError):
            print(f"lakesift: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if getattr(args, "verbose", False):
            raise
        print(f"lakesift {args.command} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
              "\n(run with -v for the full traceback)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
