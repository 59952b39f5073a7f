"""Gold: the documents a recipe keeps, and why the others were dropped.

Reads   silver.documents and the signal tables the recipe's predicates read (versions logged)
Writes  gold.corpus      (replaces the recipe's partition: one new Delta version per run)
        gold.rejections  (replaces the recipe's rows: documents and estimated tokens per drop reason)
Re-run  the same recipe on the same input versions gives the same rows. Top-p% thresholds are computed
        from the score distribution of the documents still standing at that predicate, and recorded.
The recipe is checked against the table contracts before any data is read (jobs/gold/recipe.py).
"""
from __future__ import annotations

import io
import sys
from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from jobs.gold import recipe as R
from jobs.runtime import sqlplan, tables
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.tracking import job_run
from schemas import families as signal_families
from schemas import gold

TOKEN_CHARS = 4          # ~4 characters per BPE token for English web text (GPT-2/3 tokenisers)


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    recipe: str = option(help="shipped recipe name (see `lakesift recipes`) or a YAML file")
    overrides: tuple[str, ...] = option((), "override a recipe's signal option, e.g. quality.model=my_classifier",
                                        flag="--signal", metavar="FAMILY.OPTION=VALUE", repeat=True)
    crawls: tuple[str, ...] = option((), "crawl to select from (default: all)", flag="--crawl", repeat=True)

    def load_recipe(self) -> R.Recipe:
        parsed = {}
        for item in self.overrides:
            key, eq, value = item.partition("=")
            if not eq or "." not in key:
                raise R.RecipeError(f"override {item!r}: use family.option=value, e.g. quality.model=my_model")
            parsed[key] = value
        return R.load(self.recipe, parsed)


def _family_frames(spark: SparkSession, cfg: JobConfig, recipe: R.Recipe, empty: bool) -> tuple[dict[str, DataFrame], dict[str, int]]:
    """alias -> DataFrame for documents and each family the recipe reads (empty ones for validation)."""
    frames, versions = {}, {}
    for name in ["documents", *recipe.families()]:
        family = signal_families.BY_NAME[name]
        contract = family.contract
        if empty:
            df = spark.createDataFrame([], contract.schema)
        else:
            versions[contract.fullname] = tables.table_version(spark, cfg, contract)
            df = tables.read_table(spark, cfg, contract, versions[contract.fullname])
        opts = recipe.signals.get(name, {})
        if family.struct:
            df = df.where(F.col(family.struct).isNotNull()).select("doc_id", f"{family.struct}.*")
        for key, spec in family.options.items():
            value = opts.get(key, spec.default)
            if value is None and spec.required:
                raise R.RecipeError(f"recipe {recipe.name}: the {name} family needs signals.{name}.{key}")
            if value is not None:
                df = df.where(F.col(spec.column) == value)
        if name != "documents":
            df = df.drop("crawl")
        frames[family.alias] = df
    return frames, versions


def joined(frames: dict[str, DataFrame]) -> DataFrame:
    """documents d left-joined with every other family on doc_id, columns addressable as alias.column."""
    out = frames["d"].alias("d")
    for alias, df in frames.items():
        if alias != "d":
            out = out.join(df.alias(alias), F.col("d.doc_id") == F.col(f"{alias}.doc_id"), "left")
    return out


def validate(spark: SparkSession, recipe: R.Recipe) -> None:
    """Analyse every predicate against empty tables with the contracts' schemas: unknown columns, syntax
    errors and wrong types fail here, naming the predicate, before any data is read."""
    from pyspark.errors import AnalysisException, ParseException

    frames, _ = _family_frames(spark, JobConfig(), recipe, empty=True)
    df = joined(frames)
    for p in recipe.predicates:
        try:
            refused = [f for f in sqlplan.called_functions(spark, p.sql()) if f not in R.ALLOWED_FUNCTIONS]
            if refused:                        # before analysis: a subquery's tables are never even looked up
                raise R.RecipeError(f"recipe {recipe.name}: predicate {p.name}: {', '.join(sorted(set(refused)))} "
                                    "is not allowed in a predicate (only deterministic functions of the signal "
                                    "columns; see jobs/gold/recipe.py ALLOWED_FUNCTIONS)")
            dtype = df.select(F.expr(p.sql()).alias("v")).schema["v"].dataType.simpleString()
        except (AnalysisException, ParseException) as exc:
            message = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise R.RecipeError(f"recipe {recipe.name}: predicate {p.name}: {message}") from None
        if p.where is not None and dtype != "boolean":
            raise R.RecipeError(f"recipe {recipe.name}: predicate {p.name}: `where` must be a condition, got {dtype}")
        if p.where is None and dtype not in ("double", "float", "int", "bigint", "smallint", "tinyint") and not dtype.startswith("decimal"):
            raise R.RecipeError(f"recipe {recipe.name}: predicate {p.name}: `score` must be numeric, got {dtype}")


def thresholds(df: DataFrame, recipe: R.Recipe) -> dict[str, float | None]:
    """Top-p% thresholds, in order: the (1 - p) quantile of the score over documents standing at that step."""
    out: dict[str, float | None] = {}
    for i, p in enumerate(recipe.predicates, 1):
        if p.top_percent is None:
            continue
        reason, _ = R.drop_reason_sql(recipe, out, upto=i)
        standing = df.where(F.expr(f"({reason}) IS NULL")).select(F.expr(p.score).cast("double").alias("s")).where("s IS NOT NULL")
        row = standing.agg(F.percentile("s", 1.0 - p.top_percent / 100.0).alias("t")).first()
        out[p.name] = None if row.t is None else float(row.t)
    return out


def decide(df: DataFrame, recipe: R.Recipe, cuts: dict[str, float | None]) -> DataFrame:
    reason, step = R.drop_reason_sql(recipe, cuts)
    signals = [F.lit(f"{a}.{c}") for a, c in recipe.columns()]
    values = [F.col(f"{a}.{c}").cast("string") for a, c in recipe.columns()]
    signal_map = F.map_from_arrays(F.array(*signals), F.array(*values)) if signals else F.create_map()
    remove = recipe.lines_to_remove()
    return df.select(F.col("d.doc_id").alias("doc_id"), F.col("d.crawl").alias("crawl"), F.col("d.url").alias("url"),
                     F.floor(F.col("d.char_count") / TOKEN_CHARS).cast("int").alias("estimated_tokens"),
                     signal_map.alias("signals"), F.expr(reason).alias("drop_reason"), F.expr(step).alias("step"),
                     (F.expr(remove) if remove else F.lit(None).cast("array<int>")).alias("remove_lines"))


def cleaned(text, remove_lines):
    """The text without the lines at the indexes `remove_lines` (positions in split(text, '\\n'), as
    udfs/paragraphs.remove_lines); the text itself when there are none."""
    kept = F.filter(F.split(text, "\n", -1), lambda _, i: ~F.array_contains(remove_lines, i))
    return F.when(F.coalesce(F.size(remove_lines), F.lit(0)) > 0, F.array_join(kept, "\n")).otherwise(text)


def funnel(recipe: R.Recipe, total_docs: int, total_tokens: int, drops: list) -> list[tuple[int, str, int, int]]:
    """(step, predicate, documents left, tokens left) after each predicate, in recipe order."""
    by_step: dict[int, tuple[int, int]] = {}
    for r in drops:
        d, t = by_step.get(r.step, (0, 0))
        by_step[r.step] = (d + r.documents, t + r.estimated_tokens)
    rows, docs, toks = [], total_docs, total_tokens
    named = [(i, p.name) for i, p in enumerate(recipe.predicates, 1)] + ([R.clean_step(recipe)] if recipe.clean else [])
    for i, name in named:
        d, t = by_step.get(i, (0, 0))
        docs, toks = docs - d, toks - t
        rows.append((i, name, docs, toks))
    return rows


def funnel_figure(recipe: R.Recipe, rows: list[tuple[int, str, int, int]], total_docs: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["input"] + [name for _, name, _, _ in rows]
    docs = [total_docs] + [d for _, _, d, _ in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(labels)), 4))
    ax.bar(range(len(labels)), docs, color="#3b7dd8")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("documents left")
    ax.set_title(f"recipe {recipe.name}: documents left after each predicate")
    fig.tight_layout()
    return fig


def run(spark: SparkSession, cfg: Config, out=sys.stdout) -> dict:
    recipe = cfg.load_recipe()
    validate(spark, recipe)                                      # before any data is read
    with job_run(cfg, "select", name=f"select {recipe.name}", recipe=recipe.name, recipe_fingerprint=recipe.fingerprint()) as tracked:
        tracked.params(recipe_name=recipe.name, recipe_fingerprint=recipe.fingerprint(),
                       recipe_predicates=" | ".join(p.name for p in recipe.predicates))
        frames, versions = _family_frames(spark, cfg, recipe, empty=False)
        for table, version in versions.items():
            tracked.table_read(table, version)
        if cfg.crawls:
            frames["d"] = frames["d"].where(F.col("crawl").isin(list(cfg.crawls)))
        df = joined(frames)
        cuts = thresholds(df, recipe)
        tracked.params(**{f"threshold.{k}": v for k, v in cuts.items()})
        decided = decide(df, recipe, cuts).localCheckpoint()
        fingerprint = F.lit(recipe.fingerprint())
        text = cleaned(F.col("text"), F.col("remove_lines"))
        kept = (decided.where("drop_reason IS NULL")
                .join(frames["d"].select("doc_id", "text"), "doc_id")
                .select("doc_id", F.lit(recipe.name).alias("recipe"), fingerprint.alias("recipe_fingerprint"),
                        "crawl", "url", text.alias("text"), F.col("estimated_tokens").alias("tokens_before"), "signals")
                .withColumn("estimated_tokens", F.floor(F.length("text") / TOKEN_CHARS).cast("int")))
        cut = Observation("cleaning")
        kept = kept.observe(cut, F.coalesce(F.sum(F.col("tokens_before") - F.col("estimated_tokens")), F.lit(0)).alias("tokens"),
                            F.count_if(F.col("tokens_before") != F.col("estimated_tokens")).alias("documents")).drop("tokens_before")
        recipe_rows = f"recipe = {tables.sql_literal(recipe.name)}"
        tracked.table_written(gold.CORPUS.fullname, tables.replace_where(kept, cfg, gold.CORPUS, recipe_rows))
        drops = (decided.where("drop_reason IS NOT NULL").groupBy("step", "drop_reason")
                 .agg(F.count(F.lit(1)).alias("documents"), F.sum("estimated_tokens").cast("long").alias("estimated_tokens"))
                 .select(F.lit(recipe.name).alias("recipe"), fingerprint.alias("recipe_fingerprint"),
                         F.col("step").cast("int").alias("step"), "drop_reason", "documents", "estimated_tokens"))
        cleaning = {}
        if recipe.clean:               # tokens cut from the documents kept: a row with 0 documents dropped
            step, name = R.clean_step(recipe)
            cleaning = {"cleaned_documents": int(cut.get["documents"]), "cleaned_tokens": int(cut.get["tokens"])}
            drops = drops.unionByName(spark.createDataFrame(
                [(recipe.name, recipe.fingerprint(), step, name, 0, cleaning["cleaned_tokens"])], gold.REJECTIONS.schema))
        tracked.table_written(gold.REJECTIONS.fullname, tables.replace_where(drops, cfg, gold.REJECTIONS, recipe_rows))
        totals = decided.agg(F.count(F.lit(1)).alias("n"), F.sum("estimated_tokens").alias("t")).first()
        total_docs, total_tokens = int(totals.n), int(totals.t or 0)
        drop_rows = tables.read_table(spark, cfg, gold.REJECTIONS).where(recipe_rows).orderBy("step", "drop_reason").collect()
        rows = funnel(recipe, total_docs, total_tokens, drop_rows)
        for step, _, docs, toks in rows:
            tracked.metrics(step=step, funnel_documents=docs, funnel_tokens=toks)
        kept_docs, kept_tokens = (rows[-1][2], rows[-1][3]) if rows else (total_docs, total_tokens)
        tracked.metrics(rows_in_documents=total_docs, rows_out_documents=kept_docs, tokens_in=total_tokens,
                        tokens_out=kept_tokens)
        tracked.figure(funnel_figure(recipe, rows, total_docs), "funnel.png")
        report = io.StringIO()
        from jobs import console as output

        output.table(("step", "predicate", "documents left", "tokens left"), [("0", "input", total_docs, total_tokens), *rows],
                     out=report)
        tracked.text(report.getvalue(), "funnel.txt")
        return {"run_id": tracked.run_id, "recipe": recipe.name, "fingerprint": recipe.fingerprint(),
                "thresholds": cuts, "documents_in": total_docs, "documents_out": kept_docs, "tokens_in": total_tokens,
                "tokens_out": kept_tokens, "funnel": rows, "funnel_table": report.getvalue(),
                "drops": [(r.step, r.drop_reason, r.documents) for r in drop_rows], **cleaning,
                "corpus_version": tracked.versions[f"wrote.{gold.CORPUS.fullname}"]}


def report(s: dict) -> Report:
    cuts = ", ".join(f"{k} >= {v:.4g}" for k, v in s["thresholds"].items() if v is not None)
    return Report(s["documents_in"], s["documents_out"],
                  f"gold.corpus v{s['corpus_version']}: recipe {s['recipe']} ({s['fingerprint']}) kept "
                  f"{s['documents_out']} of {s['documents_in']} documents, {s['tokens_out']:,} of {s['tokens_in']:,} "
                  f"estimated tokens" + (f"; thresholds {cuts}" if cuts else "")
                  + (f"; cleaning cut {s['cleaned_tokens']:,} tokens from {s['cleaned_documents']:,} documents"
                     if "cleaned_tokens" in s else ""), s["funnel_table"])


STAGE = Stage("select", "apply a recipe -> gold.corpus (new version) and gold.rejections", Config,
              lambda spark, cfg, progress: run(spark, cfg),
              reads=tuple(f.contract.fullname for f in signal_families.FAMILIES),
              writes=(gold.CORPUS.fullname, gold.REJECTIONS.fullname), report=report)
