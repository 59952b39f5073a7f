"""Gold: what a recipe keeps, why the rest was dropped, and how proxy models trained on it score."""
from pyspark.sql.types import DoubleType, IntegerType, LongType, MapType, StringType

from schemas.contract import Column, TableContract

CORPUS = TableContract(
    layer="gold",
    name="corpus",
    key=("doc_id", "recipe"),
    comment="The documents a recipe keeps; each select replaces its recipe's partition (one Delta version per run).",
    columns=(
        Column("doc_id", StringType(), "silver.documents.doc_id", False),
        Column("recipe", StringType(), "recipe name", False),
        Column("recipe_fingerprint", StringType(), "sha256 prefix of the recipe's canonical content", False),
        Column("crawl", StringType(), "crawl id", False),
        Column("url", StringType(), "WARC-Target-URI"),
        Column("text", StringType(), "main text", False),
        Column("estimated_tokens", IntegerType(), "characters / 4, a BPE-token estimate for English", False),
        Column("signals", MapType(StringType(), StringType()), "the signal values the recipe's predicates read, as text"),
    ),
    partition_by=("recipe",),
    properties={"delta.dataSkippingStatsColumns": "doc_id,recipe_fingerprint,crawl,estimated_tokens"},
)

REJECTIONS = TableContract(
    layer="gold",
    name="rejections",
    comment="Documents and tokens each recipe dropped, by the first predicate they failed.",
    columns=(
        Column("recipe", StringType(), "recipe name", False),
        Column("recipe_fingerprint", StringType(), "sha256 prefix of the recipe's canonical content", False),
        Column("step", IntegerType(), "position of the predicate in the recipe (1-based)", False),
        Column("drop_reason", StringType(), "the predicate's name, or missing_<family> when its signal is absent", False),
        Column("documents", LongType(), "documents dropped here", False),
        Column("estimated_tokens", LongType(), "their estimated tokens", False),
    ),
)

PROXY_EVALS = TableContract(
    layer="gold",
    name="proxy_evals",
    key=("run_id", "task"),
    comment="Scores of proxy models trained on gold.corpus versions: one row per run, task and metric.",
    columns=(
        Column("run_id", StringType(), "MLflow run of the trained proxy model", False),
        Column("recipe", StringType(), "recipe of the corpus it trained on", False),
        Column("recipe_fingerprint", StringType(), "that recipe's fingerprint", False),
        Column("corpus_version", LongType(), "gold.corpus version it trained on", False),
        Column("scale", StringType(), "scale preset (tiny, small, base, large)", False),
        Column("seed", IntegerType(), "training seed", False),
        Column("parameters", LongType(), "model parameters", False),
        Column("tokens", LongType(), "tokens trained on", False),
        Column("task", StringType(), "heldout, core (CORE-like average) or an evaluation task", False),
        Column("metric", StringType(), "bpb, acc, acc_norm, centered, items", False),
        Column("value", DoubleType(), "the score", False),
    ),
    properties={"delta.dataSkippingStatsColumns": "run_id,recipe,task,metric"},
)

TABLES = (CORPUS, REJECTIONS, PROXY_EVALS)
