"""Proxy models: the evaluation harness against hand computation, training determinism, the jobs' errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jobs.proxy import evaluate, trainer  # noqa: E402
from udfs import lm  # noqa: E402


def identity_blocks(cfg: lm.ModelConfig):
    """A model whose transformer blocks add nothing (zeroed output projections): logits are
    LayerNorm(tok[x] + pos[t]) @ tok.T, which numpy can compute by hand."""
    torch.manual_seed(0)
    model = lm.build_model(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.split(".")[-2] in ("proj", "out"):
                p.zero_()
    return model.eval()


def hand_logprob(model, context: str, continuation: str) -> float:
    tok = model.tok.weight.detach().numpy().astype(np.float64)
    pos = model.pos.weight.detach().numpy().astype(np.float64)
    g, b = model.ln_f.weight.detach().numpy(), model.ln_f.bias.detach().numpy()
    seq = [lm.EOT] + list(context.encode()) + list(continuation.encode())
    total = 0.0
    for t in range(len(seq) - len(continuation.encode()), len(seq)):
        h = tok[seq[t - 1]] + pos[t - 1]
        h = (h - h.mean()) / np.sqrt(h.var() + 1e-5) * g + b
        logits = tok @ h
        total += logits[seq[t]] - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
    return total


def test_continuation_logprobs_match_hand_computation():
    model = identity_blocks(lm.ModelConfig(d_model=16, n_layers=1, n_heads=2, context=64))
    pairs = [("The cat sat on the", " mat"), ("", "abc"), ("x" * 100, " y")]      # the third is cut from the left
    got, sizes = lm.continuation_logprobs(model, [c for c, _ in pairs], [k for _, k in pairs], "cpu")
    for (ctx, cont), value in zip(pairs[:2], got[:2]):
        assert value == pytest.approx(hand_logprob(model, ctx, cont), abs=1e-4)
    assert sizes.tolist() == [4, 3, 2]
    bpb, nbytes = lm.bits_per_byte(model, ["hello world"], "cpu")
    expected = -hand_logprob(model, "", "hello world") / math.log(2) / 11
    assert nbytes[0] == 11 and bpb[0] == pytest.approx(expected, rel=1e-4)


def test_fewshot_prompts_follow_the_documented_format():
    items = [{"query": f"Q{i}?", "choices": ["a", "b"], "gold": i % 2} for i in range(6)]
    prefix = evaluate.fewshot_prefix(items, 2, "mc", 3, seed=0)
    lines = prefix.split("\n")
    assert prefix.endswith("\n") and len(lines) == 4 and lines[-1] == ""
    for line in lines[:3]:
        q = int(line[1:line.index("?")])
        assert q != 2 and line == f"Q{q}? {'ab'[q % 2]}"
    assert evaluate.fewshot_prefix(items, 2, "mc", 3, seed=0) == prefix            # seeded
    assert evaluate.fewshot_prefix(items, 2, "mc", 0, seed=0) == ""
    schema = [{"context_options": ["A x", "B x"], "continuation": "ends.", "gold": 1}] * 2
    assert evaluate.fewshot_prefix(schema, 0, "schema", 1, seed=0) == "B x ends.\n"


def test_malformed_eval_lines_are_counted_not_fatal(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"query": "q", "choices": ["a", "b"], "gold": 0}\nnot json\n{"query": "q"}\n'
                    '{"query": "q", "choices": ["a", "b"], "gold": 5}\n\n')
    items, bad = evaluate.load_task(str(path), "mc")
    assert len(items) == 1 and bad == 3


def test_model_trained_on_a_task_scores_it_perfectly(tmp_path):
    """Memorise the answers of a small multiple-choice task, then evaluate on it: accuracy 1.0."""
    animals = [("barks", "dog"), ("meows", "cat"), ("moos", "cow"), ("quacks", "duck"), ("neighs", "horse"), ("oinks", "pig")]
    names = [a for _, a in animals]
    items = [{"query": f"Which animal {sound}?", "choices": sorted(set([name, names[(i + 1) % 6], names[(i + 2) % 6]])),
              "gold": 0} for i, (sound, name) in enumerate(animals)]
    for item, (_, name) in zip(items, animals):
        item["gold"] = item["choices"].index(name)
    text = "\n".join(evaluate.answered(it, "mc") for it in items)
    stream = lm.encode_documents([text] * 200)
    spec = trainer.TrainSpec(model=lm.ModelConfig(d_model=64, n_layers=2, n_heads=4, context=64), tokens=250_000,
                             batch=16, lr=3e-3, device="cpu", eval_points=2, threads=1)
    model, history = trainer.train(spec, stream, [text])
    task = evaluate.Task("x", "mc", 0, 1 / 3)
    scores = evaluate.score_task(model, items, task, "cpu")
    assert scores["acc"] == 1.0 and scores["centered"] == 1.0
    assert history.eval_bpb[-1] < 1.0          # memorised: far below 8 bits per byte of a uniform guess
    lm_items = [{"context": f"Which animal {s}?", "continuation": a} for s, a in animals]
    lm_text = "\n".join(f"Which animal {s}? {a}" for s, a in animals)
    model2, _ = trainer.train(spec, lm.encode_documents([lm_text] * 200), [lm_text])
    assert evaluate.score_task(model2, lm_items, evaluate.Task("y", "lm", 0, 0.0), "cpu")["acc"] == 1.0


def test_training_is_deterministic_on_cpu():
    stream = lm.encode_documents(["The quick brown fox jumps over the lazy dog. " * 40] * 20)
    spec = trainer.TrainSpec(model=lm.ModelConfig(d_model=32, n_layers=2, n_heads=2, context=32), tokens=40_000,
                             batch=8, lr=3e-3, seed=5, device="cpu", eval_points=3, threads=1)
    runs = [trainer.train(spec, stream, ["The lazy dog."])[1] for _ in range(2)]
    assert runs[0].loss[-1] == pytest.approx(runs[1].loss[-1], abs=1e-6)
    assert runs[0].eval_bpb == pytest.approx(runs[1].eval_bpb, abs=1e-6)
    other = trainer.train(trainer.TrainSpec(**{**spec.__dict__, "seed": 6}), stream, ["The lazy dog."])[1]
    assert other.loss[-1] != pytest.approx(runs[0].loss[-1], abs=1e-6)


def test_short_runs_evaluate_at_most_every_few_steps():
    stream = lm.encode_documents(["Short runs spend their time training, not evaluating. " * 20] * 10)
    spec = trainer.TrainSpec(model=lm.ModelConfig(d_model=16, n_layers=1, n_heads=2, context=16), tokens=7 * 4 * 16,
                             batch=4, lr=3e-3, device="cpu", threads=1)
    history = trainer.train(spec, stream, ["Short runs."])[1]
    assert spec.steps == 7 and len(history.loss) == 7
    assert len(history.eval_bpb) == 2 and history.eval_tokens == [5 * 4 * 16, 7 * 4 * 16]    # after step 5, and the last


def test_tokens_to_reach_and_speedup():
    assert trainer.tokens_to_reach([100, 200, 300], [3.0, 2.0, 1.5], 2.5) == pytest.approx(150.0)
    assert trainer.tokens_to_reach([100, 200], [3.0, 2.0], 1.0) is None
    assert trainer.tokens_to_reach([100, 200], [1.0, 0.9], 2.0) == 100.0
    from jobs.proxy.compare import speedups

    curves = {"raw": ([100, 200, 300, 400], [3.0, 2.5, 2.2, 2.0]), "good": ([100, 200, 300, 400], [2.5, 2.0, 1.8, 1.6]),
              "bad": ([100, 200, 300, 400], [3.5, 3.2, 3.0, 2.9])}
    gains = speedups(curves, "raw")
    assert gains["raw"] == pytest.approx(1.0) and gains["good"] == pytest.approx(2.0) and gains["bad"] is None


def test_cuda_requested_without_a_gpu_fails_clearly():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="device=cuda was asked for"):
        lm.device_for("cuda")
    assert lm.device_for("auto") == "cpu"


def test_budget_and_empty_corpus_errors(spark, home):

    from jobs.proxy import train_proxy
    from jobs.runtime import tables
    from jobs.runtime.config import JobConfig
    from jobs.runtime.tracking import client_and_experiment
    from schemas import gold

    rows = [(f"d{i}", "small", "fp", "C", None, "a short document " * 5, 20, {}) for i in range(3)]
    tables.replace_where(spark.createDataFrame(rows, gold.CORPUS.schema), JobConfig(home=home), gold.CORPUS, "recipe = 'small'")
    heldout = (str(__file__),)
    with pytest.raises(ValueError, match="would repeat them .* times"):
        train_proxy.run(spark, train_proxy.Config(home=home, recipe="small", tokens=1_000_000, heldout=heldout))
    with pytest.raises(ValueError, match="no rows for recipe nothing"):
        train_proxy.run(spark, train_proxy.Config(home=home, recipe="nothing", heldout=heldout))
    client, exp = client_and_experiment(JobConfig(home=home))
    statuses = {r.info.status for r in client.search_runs([exp], "tags.`lakesift.job` = 'train_proxy'")}
    assert statuses == {"FAILED"}


def test_heldout_text_is_cut_into_blocks_within_the_byte_limit(tmp_path):
    from jobs.proxy.trainer import heldout_texts

    path = tmp_path / "wiki.txt"
    path.write_text(" = Title = \n \n First paragraph here . \n \n Second one , longer than the first . \n")
    assert heldout_texts((str(path),), limit=1000) == ["= Title =", "First paragraph here .", "Second one , longer than the first ."]
    cut = heldout_texts((str(path),), limit=20)
    assert cut == ["= Title =", "First parag"] and sum(len(t.encode()) for t in cut) == 20


def test_items_whose_answer_exceeds_the_context_are_counted_not_fatal():
    model = identity_blocks(lm.ModelConfig(d_model=16, n_layers=1, n_heads=2, context=32))
    items = [{"query": "Q?", "choices": ["yes", "no"], "gold": 0},
             {"query": "Q?", "choices": ["a" * 40, "b"], "gold": 1}]
    scores = evaluate.score_task(model, items, evaluate.Task("x.jsonl", "mc", 0, 0.5), "cpu")
    assert scores["items"] == 1 and scores["skipped"] == 1
    assert evaluate.score_task(model, items[1:], evaluate.Task("x.jsonl", "mc", 0, 0.5), "cpu") == {"items": 0, "skipped": 1}


def test_heldout_domains_are_measured_apart_and_the_excluded_one_left_out_of_the_mean(tmp_path):
    from jobs.proxy.trainer import heldout_domains

    (tmp_path / "a.txt").write_text("The lazy dog sleeps.\n\nA quick fox runs.\n")
    (tmp_path / "b-set.txt").write_text("Completely different text 12345 !!!\n")
    domains = heldout_domains((f"news={tmp_path / 'a.txt'}", str(tmp_path / "b-set.txt")))
    assert list(domains) == ["news", "b_set"] and domains["news"] == ["The lazy dog sleeps.", "A quick fox runs."]
    with pytest.raises(ValueError, match="given twice"):
        heldout_domains((f"x={tmp_path / 'a.txt'}", f"x={tmp_path / 'a.txt'}"))
    with pytest.raises(ValueError, match="no such file"):
        heldout_domains((f"x={tmp_path / 'missing.txt'}",))
    with pytest.raises(ValueError, match="invalid held-out domain name"):
        heldout_domains((f"bad name={tmp_path / 'a.txt'}",))
    stream = lm.encode_documents(["The lazy dog sleeps in the sun. " * 30] * 20)
    spec = trainer.TrainSpec(model=lm.ModelConfig(d_model=16, n_layers=1, n_heads=2, context=32), tokens=20_000,
                             batch=8, lr=3e-3, device="cpu", eval_points=2, threads=1)
    history = trainer.train(spec, stream, domains, excluded=("b_set",))[1]
    assert set(history.eval_bpb_by_domain) == {"news", "b_set"}
    assert history.eval_bpb == pytest.approx(history.eval_bpb_by_domain["news"])      # b_set reported, not counted
    assert history.eval_bpb_by_domain["news"][-1] < history.eval_bpb_by_domain["b_set"][-1]


def test_intervals_and_per_seed_speedups():
    from jobs.proxy.compare import interval, summarize

    i = interval([1.0, 2.0, 3.0])
    assert i["mean"] == 2.0 and i["low"] == pytest.approx(2.0 - 4.303 * 1.0 / math.sqrt(3)) and i["n"] == 3
    assert interval([5.0])["low"] is None and interval([None])["mean"] is None

    def run(seed, bpb):
        return {"seed": seed, "tokens": 400, "eval_tokens": [100, 200, 300, 400], "eval_bpb": bpb,
                "final_heldout_bpb": bpb[-1], "final_heldout_bpb_by_domain": {"d": bpb[-1]}, "corpus_epochs": 0.5,
                "core_like": None}

    runs = {"raw": [run(0, [3.0, 2.5, 2.2, 2.0]), run(1, [3.0, 2.6, 2.3, 2.1])],
            "good": [run(0, [2.5, 2.0, 1.8, 1.6]), run(1, [2.6, 2.1, 1.9, 1.7])],
            "bad": [run(0, [3.5, 3.2, 3.0, 2.9]), run(1, [3.5, 3.2, 3.0, 2.9])]}
    s = summarize(runs, "raw")
    assert s["good"]["speedup_per_seed"] == [pytest.approx(2.0), pytest.approx(2.0)]
    assert s["bad"]["speedup_not_reached"] == 2 and s["bad"]["speedup"]["mean"] is None
    assert s["raw"]["heldout_bpb"]["mean"] == pytest.approx(2.05) and s["good"]["by_domain"]["d"]["mean"] == pytest.approx(1.65)


def test_training_reads_only_the_budget_and_random_subsets(spark, home):
    """train-proxy reads the recipe's export (written on first use, shared afterwards): a seeded order of
    whole documents, only as many as the budget needs, the same for any sharding."""
    from jobs.gold import export_shards
    from jobs.proxy import train_proxy
    from jobs.runtime import tables
    from jobs.runtime.config import JobConfig
    from schemas import gold

    rows = [(f"d{i:03d}", "many", "fp", "C", None, f"document {i} " + "with some words in it " * 10, 50, {})
            for i in range(200)]
    tables.replace_where(spark.createDataFrame(rows, gold.CORPUS.schema), JobConfig(home=home), gold.CORPUS, "recipe = 'many'")
    version = tables.table_version(spark, JobConfig(home=home), gold.CORPUS)
    cfg = train_proxy.Config(home=home, recipe="many", heldout=(str(__file__),))
    said = []
    folder = train_proxy.export_folder(spark, cfg, version, said.append)
    assert said and train_proxy.export_folder(spark, cfg, version, said.append) == folder and len(said) == 1  # once
    manifest = train_proxy.read_manifest(folder, "many")
    stream, counts = train_proxy.corpus_stream(cfg, folder, manifest, budget=5_000)
    assert 5_000 <= len(stream) < 5_000 + 300 and counts["documents"] == 200 and counts["documents_read"] < 40
    again, _ = train_proxy.corpus_stream(cfg, folder, manifest, budget=5_000)
    assert np.array_equal(stream, again)                                      # same seed, same stream
    other = export_shards.run(spark, export_shards.Config(home=home, recipe="many", version=version, shards=3,
                                                          format="parquet", output=f"{home}/other"))
    resharded, _ = train_proxy.corpus_stream(cfg, other["output"], train_proxy.read_manifest(other["output"]), 5_000)
    assert np.array_equal(stream, resharded)                                  # the order is the documents'
    ends = np.flatnonzero(stream == 256)                                      # end-of-text tokens
    docs = [bytes(stream[a + 1:b].astype(np.uint8)).decode() for a, b in zip(np.r_[-1, ends[:-1]], ends)]
    assert set(docs) <= {r[5] for r in rows} and len(set(docs)) == len(docs)  # whole documents, once each
    sub = train_proxy.Config(home=home, recipe="many", heldout=(str(__file__),), subset_tokens=3_000, seed=1)
    stream, counts = train_proxy.corpus_stream(sub, folder, manifest, budget=6_000)
    assert len(stream) == 3_000 and counts["corpus_tokens"] == 3_000 and counts["epochs"] == 2.0
    with pytest.raises(ValueError, match="larger than recipe many"):
        train_proxy.corpus_stream(train_proxy.Config(home=home, recipe="many", subset_tokens=10**9), folder, manifest, 5_000)
    with pytest.raises(ValueError, match="exports recipe 'many', not 'raw'"):
        train_proxy.read_manifest(folder, "raw")


def test_gpu_ablation_script_packs_exports_and_trains_on_cpu(tmp_path):
    """bench/ablation_gpu.py end to end on CPU: exports (in `lakesift export`'s jsonl.gz layout) packed, then
    every arm and seed trained from the pack, results written."""
    import gzip
    import json
    import subprocess
    import sys

    from bench import ablation_gpu

    # the GPU machine has no Spark: the script must not import it
    blocked = "import sys; sys.modules['pyspark'] = None; import bench.ablation_gpu as g; g.main(['--help'])"
    proc = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True)
    assert "pack" in proc.stdout and "pyspark" not in proc.stderr, proc.stderr[-2000:]

    work = tmp_path / "pool"
    rng = np.random.default_rng(0)
    words = ["river", "stone", "light", "quiet", "market", "winter", "paper", "garden"]
    for arm, n in (("raw", 120), ("heuristics", 80), ("heuristics_dedup", 70), ("dclm_like", 20)):
        folder = work / "lakehouse" / "exports" / arm / "v3"        # where `lakesift run` exports
        folder.mkdir(parents=True)
        (folder.parent / "v1").mkdir()                                 # an older export: not the one packed
        with gzip.open(folder / "shard-00000-of-00001.jsonl.gz", "wt") as fh:
            for i in range(n):
                text = " ".join(rng.choice(words, 40)) + "."
                fh.write(json.dumps({"doc_id": f"{arm}-{i}", "text": text, "url": "u", "crawl": "C"}) + "\n")
        (folder / "manifest.json").write_text(json.dumps({"format": "jsonl.gz", "table_version": 3, "documents": n,
                                                          "shards": [{"file": "shard-00000-of-00001.jsonl.gz", "documents": n}]}))
    (work / "evals").mkdir()
    (work / "evals" / "a.txt").write_text("the quiet river runs past the stone garden.\n\nwinter light on paper.\n")
    (work / "evals" / "wiki.txt").write_text(" = Title = \n\n Some wiki text .\n")
    (work / "pool_manifest.json").write_text(json.dumps({"evaluation_domains": {
        "a": str(work / "evals" / "a.txt"), "wikitext2_test": str(work / "evals" / "wiki.txt")}}))
    ablation_gpu.main(["pack", "--work", str(work), "--tokens", "6000", "--out", str(tmp_path / "pack")])
    info = json.loads((tmp_path / "pack" / "pack.json").read_text())
    assert set(info["arms"]) == {"raw", "heuristics", "heuristics_dedup", "dclm_like", f"random_raw_as_{info['random_like']}"}
    assert info["arms"]["raw"]["bytes"] >= 6000 and info["arms"]["dclm_like"]["documents"] <= 20
    ablation_gpu.main(["train", "--packed", str(tmp_path / "pack"), "--scale", "tiny", "--seeds", "2",
                       "--tokens", "4096", "--device", "cpu", "--out", str(tmp_path / "out")])
    result = json.loads((tmp_path / "out" / "ablation_gpu.json").read_text())
    assert result["device"] == "cpu" and set(result["summary"]) == set(info["arms"])
    raw = result["summary"]["raw"]
    assert raw["seeds"] == 2 and set(raw["by_domain"]) == {"a", "wikitext2_test"}
    assert raw["heldout_bpb"]["mean"] == pytest.approx(raw["by_domain"]["a"]["mean"])          # wikitext2_test excluded
