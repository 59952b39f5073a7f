"""Silver: documents and the signals computed over them (facts and scores, never decisions)."""
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from schemas.contract import Column, TableContract
from udfs import heuristics

_SQL_TYPES = {"int": IntegerType(), "double": DoubleType(), "boolean": BooleanType(), "string": StringType()}
HEURISTICS_STRUCT = StructType([StructField(name, _SQL_TYPES[t], True) for name, t in heuristics.FIELDS])
HEURISTICS_V1_STRUCT = StructType([StructField(name, _SQL_TYPES[t], True) for name, t in heuristics.V1_FIELDS])

DOCUMENTS = TableContract(
    layer="silver",
    name="documents",
    key=("doc_id",),
    comment="One row per HTML response: main text, title and language. Never filtered for quality.",
    columns=(
        Column("doc_id", StringType(), "the WARC-Record-ID of the response", False),
        Column("crawl", StringType(), "crawl id, as in bronze", False),
        Column("url", StringType(), "WARC-Target-URI"),
        Column("host", StringType(), "lower-case host name of the URL"),
        Column("warc_date", TimestampType(), "fetch time, UTC"),
        Column("title", StringType(), "the page <title>"),
        Column("text", StringType(), "extracted main text; empty when extraction failed (see extract_error)", False),
        Column("language", StringType(), "fastText lid.176 language code; NULL when the text has no letters"),
        Column("language_score", DoubleType(), "fastText probability of that language on the first 1,000 "
                                                "characters (5,000 where that was below 0.95)"),
        Column("char_count", IntegerType(), "characters of text", False),
        Column("word_count", IntegerType(), "whitespace-separated words of text", False),
        Column("charset", StringType(), "codec the HTML was decoded with"),
        Column("extractor", StringType(), "extractor name+version, e.g. resiliparse-2.0.1+trim1", False),
        Column("extract_error", StringType(), "why the text is empty (empty payload, binary payload, …); NULL when fine"),
        Column("source_file", StringType(), "WARC/ARC file of the record", False),
        Column("source_offset", LongType(), "byte offset of the record in that file", False),
        Column("body_truncated", BooleanType(), "the body, its content coding (gzip, deflate, br) undone, passed "
                                                "5 MiB and was cut there (a huge page or a decompression bomb); "
                                                "NULL in rows written before this column"),
    ),
    partition_by=("crawl",),
    # No statistics over text and title: long strings, useless for data skipping, costly to collect.
    properties={"delta.dataSkippingStatsColumns": "doc_id,url,host,warc_date,language,language_score,"
                                                  "char_count,word_count,extract_error,source_file,source_offset"},
)

SIGNALS_HEURISTIC = TableContract(
    layer="silver",
    name="signals_heuristic",
    key=("doc_id",),
    comment="Gopher, C4, FineWeb and RefinedWeb-URL statistics per document (udfs/heuristics.py).",
    columns=(
        Column("doc_id", StringType(), "silver.documents.doc_id", False),
        Column("crawl", StringType(), "crawl id", False),
        Column(heuristics.V1_VERSION, HEURISTICS_V1_STRUCT,
               "the earlier definitions (rows written before heuristics_v2; NULL since)"),
        Column(heuristics.VERSION, HEURISTICS_STRUCT,
               "heuristic statistics, values only; definitions and sources in udfs/heuristics.py"),
    ),
    partition_by=("crawl",),
)

SIGNALS_MINHASH = TableContract(
    layer="silver",
    name="signals_minhash",
    key=("doc_id", "version"),
    comment="MinHash signature and exact-text hash per document and parameter version (udfs/minhash.py).",
    columns=(
        Column("doc_id", StringType(), "silver.documents.doc_id", False),
        Column("crawl", StringType(), "crawl id", False),
        Column("version", StringType(), "parameter tag, e.g. minhash_5g_14x8", False),
        Column("text_hash", LongType(), "64-bit hash of the normalised word sequence; NULL for text without words"),
        Column("signature", ArrayType(IntegerType(), False),
               "bands*rows MinHash values, uint32 stored as int (x & 4294967295 restores them); NULL without shingles"),
    ),
    partition_by=("crawl",),
    properties={"delta.dataSkippingStatsColumns": "doc_id,version,text_hash"},
)

DUPLICATES = TableContract(
    layer="silver",
    name="duplicates",
    key=("doc_id", "version", "scope"),
    comment="Duplicate clusters: exact text, same URL, and MinHash-LSH near duplicates, as connected components; "
            "semdedup_* versions add pairs of near-identical meaning (jobs/silver/semantic_dedup.py).",
    columns=(
        Column("doc_id", StringType(), "silver.documents.doc_id", False),
        Column("crawl", StringType(), "crawl id", False),
        Column("version", StringType(), "MinHash parameter tag the clusters were computed with, or semdedup_<encoder>_"
                                         "<cosine> for MinHash clusters merged through semantic pairs", False),
        Column("scope", StringType(), "crawl: clusters within each crawl; global: across every crawl deduplicated", False),
        Column("exact_group", LongType(), "text_hash shared by documents with identical normalised text"),
        Column("url_group", LongType(), "hash of the normalised URL (scheme, www., fragment, trailing slash dropped)"),
        Column("cluster_id", StringType(), "doc_id of the cluster's representative", False),
        Column("cluster_size", IntegerType(), "documents in the cluster (1: no duplicate)", False),
        Column("is_representative", BooleanType(), "the one document a recipe keeps: earliest warc_date, then smallest doc_id", False),
    ),
    partition_by=("crawl",),
    properties={"delta.dataSkippingStatsColumns": "doc_id,version,scope,cluster_id,cluster_size"},
)

PARAGRAPH_HASHES = TableContract(
    layer="silver",
    name="paragraph_hashes",
    key=("doc_id", "version"),
    comment="Per document, the hashes of its counted lines (udfs/paragraphs.py): the state repeated-paragraph "
            "counts are taken from, so a new crawl never re-reads the text of earlier ones.",
    columns=(
        Column("doc_id", StringType(), "silver.documents.doc_id", False),
        Column("crawl", StringType(), "crawl id", False),
        Column("version", StringType(), "line-hash tag, e.g. para_1w (lines of at least 1 normalised word)", False),
        Column("line_index", ArrayType(IntegerType(), False), "indexes of the counted lines in split(text, '\\n')", False),
        Column("hashes", ArrayType(LongType(), False), "64-bit hash of each counted line's normalised words", False),
        Column("chars", ArrayType(IntegerType(), False), "characters of each counted line", False),
    ),
    partition_by=("crawl",),
    properties={"delta.dataSkippingStatsColumns": "doc_id,version"},
)

PARAGRAPH_DUPLICATES = TableContract(
    layer="silver",
    name="paragraph_duplicates",
    key=("doc_id", "version", "scope"),
    comment="Per document, its lines (paragraphs) repeated in other documents of the scope; removing them leaves "
            "each repeated paragraph once, in the document fetched first (jobs/silver/paragraph_dedup.py).",
    columns=(
        Column("doc_id", StringType(), "silver.documents.doc_id", False),
        Column("crawl", StringType(), "crawl id", False),
        Column("version", StringType(), "para_<min words>w_<copies>c, e.g. para_1w_2c", False),
        Column("scope", StringType(), "crawl: counted within each crawl; global: across every crawl deduplicated", False),
        Column("paragraphs", IntegerType(), "counted lines of the text", False),
        Column("repeated_paragraphs", IntegerType(), "of them, lines another document holds first", False),
        Column("repeated_chars", IntegerType(), "characters of those lines", False),
        Column("repeated_char_frac", DoubleType(), "repeated_chars / characters of the text (0 for an empty text)", False),
        Column("repeated_lines", ArrayType(IntegerType()), "their indexes in split(text, '\\n'), ascending", False),
        Column("max_copies", IntegerType(), "documents holding the most widely repeated of those lines (0: none)", False),
    ),
    partition_by=("crawl",),
    properties={"delta.dataSkippingStatsColumns": "doc_id,version,scope,repeated_char_frac,max_copies"},
)

EMBEDDINGS = TableContract(
    layer="silver",
    name="embeddings",
    key=("doc_id", "version"),
    comment="Bag-of-sentences embedding per document (udfs/semantic.py): the state semantic dedup pairs documents from.",
    columns=(
        Column("doc_id", StringType(), "silver.documents.doc_id", False),
        Column("crawl", StringType(), "crawl id", False),
        Column("version", StringType(), "<encoder>_<sentences>x<characters>c_<tokens>t, e.g. minilm_16x300c_64t", False),
        Column("vector", BinaryType(), "the L2-normalised embedding as little-endian float16; NULL for a text "
                                       "without words"),
    ),
    partition_by=("crawl",),
    properties={"delta.dataSkippingStatsColumns": "doc_id,version"},
)

SIGNALS_QUALITY = TableContract(
    layer="silver",
    name="signals_quality",
    key=("doc_id", "model", "model_version"),
    comment="Quality-classifier score per document and model (udfs/fasttext.py).",
    columns=(
        Column("doc_id", StringType(), "silver.documents.doc_id", False),
        Column("crawl", StringType(), "crawl id", False),
        Column("model", StringType(), "registered model name (or file name for a model given by path)", False),
        Column("model_version", StringType(), "registered model version, or the model file's sha256 prefix", False),
        Column("score", DoubleType(), "P(reference quality); NULL for a document without text"),
    ),
    partition_by=("crawl",),
    properties={"delta.dataSkippingStatsColumns": "doc_id,model,model_version,score"},
)

SIGNALS_CONTAMINATION = TableContract(
    layer="silver",
    name="signals_contamination",
    key=("doc_id", "version"),
    comment="n-gram overlap of each document with evaluation sets (udfs/decontam.py).",
    columns=(
        Column("doc_id", StringType(), "silver.documents.doc_id", False),
        Column("crawl", StringType(), "crawl id", False),
        Column("version", StringType(), "decon_<n>g_<fingerprint of the evaluation files>", False),
        Column("ngram_hits", IntegerType(), "the document's word n-grams found in an evaluation item", False),
        Column("eval_sets", ArrayType(StringType(), False), "names of the evaluation sets hit, sorted", False),
        Column("contaminated", BooleanType(), "ngram_hits > 0", False),
    ),
    partition_by=("crawl",),
    properties={"delta.dataSkippingStatsColumns": "doc_id,version,ngram_hits"},
)

SIGNALS_NEURAL = TableContract(
    layer="silver",
    name="signals_neural",
    key=("doc_id", "scorer", "model", "model_version"),
    comment="Neural scores per document: embedding classifier, reference-model loss, learnability (udfs/neural.py).",
    columns=(
        Column("doc_id", StringType(), "silver.documents.doc_id", False),
        Column("crawl", StringType(), "crawl id", False),
        Column("scorer", StringType(), "embedding (P(quality)), reference (bits per byte) or learnability (bpb difference)", False),
        Column("model", StringType(), "registered model name (learnability: learner/reference)", False),
        Column("model_version", StringType(), "registered model version(s)", False),
        Column("score", DoubleType(), "the score; NULL for a document without text"),
    ),
    partition_by=("crawl",),
    properties={"delta.dataSkippingStatsColumns": "doc_id,scorer,model,model_version,score"},
)

TABLES = (DOCUMENTS, SIGNALS_HEURISTIC, SIGNALS_MINHASH, DUPLICATES, PARAGRAPH_HASHES, PARAGRAPH_DUPLICATES, EMBEDDINGS,
          SIGNALS_QUALITY, SIGNALS_CONTAMINATION, SIGNALS_NEURAL)
