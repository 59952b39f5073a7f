"""`lakesift`: the command line. Every stage's command is generated from its declaration (jobs/stages.py):
the options are its Config's fields, with their help and their one default; `run` and `demo` take the
pipeline's and the demo's Configs the same way; the other commands are in jobs/commands.py."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import typing

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LAKEHOUSE = (("--home", "lakehouse folder (default: $LAKESIFT_HOME or ./lakehouse)"),
             ("--catalog", "metastore catalog, e.g. Unity Catalog (default: the local folder)"),
             ("--schema-prefix", "prefix for the bronze/silver/gold schema names, e.g. dev_"),
             ("--tracking-uri", "MLflow tracking URI (default: sqlite store in the lakehouse)"),
             ("--experiment", "MLflow experiment name (default: lakesift)"))


def _lakehouse(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The lakehouse options, accepted before or after the command (after it, unset ones stay unset)."""
    group = parser.add_argument_group("lakehouse (every command)")
    for flag, text in LAKEHOUSE:
        group.add_argument(flag, default=argparse.SUPPRESS if suppress else None, help=text)
    group.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS if suppress else False,
                       help="log at INFO level, and show the full traceback of a failure")


def _base(args) -> dict:
    return {f.name: getattr(args, f.name) for f in _lakehouse_fields() if getattr(args, f.name, None) is not None}


def _lakehouse_fields():
    from jobs.runtime.config import JobConfig

    return dataclasses.fields(JobConfig)


def _unwrap(kind):
    """(scalar type, is tuple) of a field's annotation: int | None -> (int, False); tuple[str, ...] -> (str, True)."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) is tuple:
        return args[0], True
    if args and typing.get_origin(kind) is not None:
        return _unwrap(args[0])
    return kind, False


def add_options(parser: argparse.ArgumentParser, config: type) -> None:
    """One option per Config field declared with option(): type, choices and default from the field."""
    from jobs.runtime.config import JobConfig

    hints = typing.get_type_hints(config)
    base = {f.name for f in dataclasses.fields(JobConfig)}
    for f in dataclasses.fields(config):
        meta = f.metadata
        if f.name in base or not meta.get("cli", True) or "help" not in meta:
            continue
        kind, many = _unwrap(hints[f.name])
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else f.default
        text = meta["help"] + ("" if required or default in (None, (), False) else
                               f" (default: {' '.join(map(str, default)) if isinstance(default, tuple) else default})")
        kw = dict(dest=f.name, help=text, required=required, default=None)
        if kind is bool:
            parser.add_argument(meta["flag"] or f"--{f.name.replace('_', '-')}", action="store_true", **kw)
            continue
        flag = meta["flag"] or f"--{f.name.replace('_', '-')}"
        kw.update(type=kind, choices=meta["choices"],
                  metavar=meta["metavar"] or (flag.lstrip("-").upper() if many and not meta["choices"] else None))
        if many:
            kw["action" if meta["repeat"] else "nargs"] = "append" if meta["repeat"] else "+"
            kw["help"] += " (repeatable)" if meta["repeat"] else ""
        parser.add_argument(flag, **kw)


def make_config(config: type, args):
    """The Config of a command: the lakehouse options and every option given; the rest keep their defaults."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(config)
             if getattr(args, f.name, None) is not None and f.name not in {b.name for b in _lakehouse_fields()}}
    return config(**_base(args), **{k: tuple(v) if isinstance(v, list) else v for k, v in given.items()})


def build_parser() -> argparse.ArgumentParser:
    from jobs import commands, demo, pipeline
    from jobs.stages import STAGES

    parser = argparse.ArgumentParser(
        prog="lakesift", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Spark-native jobs that turn Common Crawl into curated LLM-pretraining corpora over Delta "
                    "tables, tracked in MLflow.",
        epilog="Start with `lakesift demo` (a sample crawl through every stage), then `lakesift run --input "
               "YOUR.warc.gz ...`.\nRun `lakesift COMMAND --help` for a command's options.")
    _lakehouse(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, text: str, **defaults) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        _lakehouse(p, suppress=True)
        p.set_defaults(**defaults)
        return p

    add_options(command("run", "every stage in order over your crawl files, skipping what is up to date; "
                        "resumes at a failed stage", handler=lambda a: cmd_run(a, pipeline.Config)), pipeline.Config)
    add_options(command("demo", "generate a sample crawl and run every stage on it: `lakesift run` with all "
                        "stages on (the main job)", handler=cmd_demo), demo.Config)
    for stage in STAGES:
        add_options(command(stage.name, stage.help, handler=lambda a, s=stage: cmd_stage(a, s)), stage.config)
    for c in commands.COMMANDS:
        c.add(command(c.name, c.help, handler=lambda a, c=c: cmd_tool(a, c)))
    return parser


def _spark(cfg):
    from jobs.runtime.spark import get_spark

    spark = get_spark(cfg, app_name="lakesift")
    if os.environ.get("LAKESIFT_CONSOLE_PROGRESS") == "1":        # a person is watching: tasks and time left
        from jobs import progress

        progress.watch(spark)
    return spark


def _task_value(spark, key: str, value: str) -> None:
    """In a Databricks job, publish a value to later tasks ({{tasks.TASK.values.KEY}}); elsewhere nothing."""
    if "DATABRICKS_RUNTIME_VERSION" not in os.environ:
        return
    try:
        from pyspark.dbutils import DBUtils

        DBUtils(spark).jobs.taskValues.set(key, value)
    except Exception as exc:                       # not a job run, or an older runtime
        logging.getLogger("lakesift").warning("could not set task value %s: %s", key, exc)


def _say(name: str):
    return lambda message: print(f"{name}: {message}", file=sys.stderr, flush=True)


def cmd_stage(args, stage) -> int:
    cfg = make_config(stage.config, args)
    spark = _spark(cfg)
    summary = stage.run(spark, cfg, _say(stage.name))
    if summary.get("run_id"):
        _task_value(spark, "run_id", summary["run_id"])
    report = stage.report(summary)
    print(report.detail + report.note)
    return EXIT_OK


def cmd_tool(args, command) -> int:
    from jobs.runtime.config import JobConfig

    cfg = JobConfig(**_base(args))
    session = []
    return command.run(args, cfg, lambda: session[0] if session else session.append(_spark(cfg)) or session[0])


def cmd_run(args, config, prepare=None) -> int:
    from jobs import console, pipeline
    from jobs.runtime.tracking import tracking_uri

    cfg = make_config(config, args)
    cfg = prepare(cfg) if prepare else cfg                 # the demo writes its samples and returns run's Config
    results = pipeline.run(_spark(cfg), cfg)
    print()
    console.table(("stage", "rows in", "rows out", "seconds", "notes"),
                  [(r.label, r.report.rows_in, r.report.rows_out, "skipped" if r.skipped else round(r.seconds, 1),
                    r.report.note) for r in results], width=100)
    for r in results:
        if r.report.detail and (r.label.startswith("select") or r.label.startswith("ablate")):
            print(f"\n{r.label}:\n{r.report.detail}", end="")
    print(f"\nLakehouse: {cfg.home}\n"
          f"Query it:   lakesift sql \"SELECT recipe, count(*) AS docs FROM gold.corpus GROUP BY 1\"\n"
          f"Watch it:   lakesift ui   (MLflow at http://127.0.0.1:5000; store {tracking_uri(cfg)})")
    return EXIT_OK


def cmd_demo(args) -> int:
    from jobs import demo

    def prepare(cfg):
        return demo.pipeline_config(cfg, demo.write_samples(cfg))

    return cmd_run(args, demo.Config, prepare)


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
    try:
        return _main(argv)
    finally:
        if "pyspark.sql.connect.session" in sys.modules:
            # Spark Connect (pyspark 4.0.1): a checkpointed DataFrame frees its server-side data with an RPC
            # from __del__; one left in a reference cycle until the interpreter shuts down blocks the exit for
            # ever (its RPC starts a thread, which shutdown never runs). Collect them while threads still run.
            import gc

            gc.collect()


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(getattr(args, "verbose", False))
    if sys.stderr.isatty():
        os.environ.setdefault("LAKESIFT_CONSOLE_PROGRESS", "1")
    try:
        return args.handler(args)
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
