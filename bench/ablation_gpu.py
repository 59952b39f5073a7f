"""The real-pool ablation on a GPU, without Spark: proxy models trained directly from exported shards.

Two steps, because the GPU machine has no Spark and at most 64 MiB travels to it:

  pack   (here)  python -m bench.ablation_gpu pack --tokens 12000000
         Reads each arm's `lakesift export` manifest (raw, heuristics, heuristics_dedup, dclm_like from
         `python -m bench.pool all`), takes the first --tokens bytes of its documents in a seeded random order
         (xxhash of doc_id, as train-proxy orders them), and writes them with the evaluation domains into
         one folder (gzip) that is carried to the GPU. The random arm is a uniform random subset of raw as
         large as the best CPU arm's corpus (bench/results/ablation.json), or as dclm_like's.
  train  (GPU)   python -m bench.ablation_gpu train --packed DIR --scale small --seeds 3 --out DIR
         Trains every arm and seed with jobs/proxy/trainer.py (bf16 on CUDA; the same code runs on CPU),
         measures held-out bits per byte per evaluation domain, and writes ablation_gpu.json: per arm the
         deciding mean (WikiText-2 test left out, as on CPU) with 95% intervals, the speedup against raw
         with its interval, and the corpus repetitions. Budget: at most 8 minutes on one H100/H200.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from jobs.proxy.trainer import SUBSET_SEED_OFFSET

ARMS = ("raw", "heuristics", "heuristics_dedup", "dclm_like")
EXCLUDED = ("wikitext2_test",)
WORK = Path(os.environ.get("BENCH_POOL_DIR", "/tmp/lakesift-pool"))


def _documents(manifest_path: Path):
    """(doc_id, text) of an export's jsonl.gz shards."""
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != "jsonl.gz":
        raise ValueError(f"{manifest_path}: pack reads jsonl.gz exports (export --format jsonl.gz)")
    for shard in manifest["shards"]:
        if not shard["file"]:
            continue
        with gzip.open(manifest_path.parent / shard["file"], "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                yield row["doc_id"], row["text"]


def seeded_order(doc_ids: list[str], seed: int = 0) -> np.ndarray:
    """A seeded random order of documents from a stable hash of their ids (never Python's hash())."""
    import pyarrow as pa

    from udfs.hashing import fmix64, word_hashes

    h = word_hashes(pa.array(doc_ids, pa.large_string())) ^ fmix64(np.array([seed + 1], dtype=np.uint64))[0]
    return np.argsort(h, kind="stable")


def pack_arm(manifest_path: Path, tokens: int, out: Path, subset: int | None = None) -> dict:
    """The first `tokens` bytes (UTF-8, one end-of-text byte per document) of the arm in seeded order; with
    `subset`, only the first `subset` bytes of that order (a random subset), repeated as training needs."""
    ids, texts = [], []
    for doc_id, text in _documents(manifest_path):
        ids.append(doc_id)
        texts.append(text)
    # a random subset is drawn in its own order (as train-proxy does), not the prefix the whole arm packs
    order = seeded_order(ids, SUBSET_SEED_OFFSET if subset else 0)
    limit = min(tokens, subset) if subset else tokens
    kept, used, available = [], 0, sum(len(t.encode("utf-8")) + 1 for t in texts)
    for i in order:
        if used >= limit:
            break
        kept.append(texts[i])
        used += len(texts[i].encode("utf-8")) + 1
    with gzip.open(out, "wt", encoding="utf-8", compresslevel=6) as fh:
        for text in kept:
            fh.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    return {"documents": len(kept), "bytes": used, "corpus_tokens": subset or available}


def latest_export(work: Path, recipe: str) -> Path:
    """The manifest of the recipe's newest export in the pool's lakehouse (<home>/exports/<recipe>/v<N>)."""
    found = sorted((work / "lakehouse" / "exports" / recipe).glob("v*/manifest.json"),
                   key=lambda p: int(p.parent.name[1:]) if p.parent.name[1:].isdigit() else -1)
    return found[-1] if found else work / "lakehouse" / "exports" / recipe / "manifest.json"


def pack(args) -> None:
    work = Path(args.work)
    out = Path(args.out or work / "gpu-pack")
    out.mkdir(parents=True, exist_ok=True)
    exports = {arm: latest_export(work, arm) for arm in ARMS}
    missing = [str(p) for p in exports.values() if not p.exists()]
    if missing:
        raise SystemExit(f"no export manifests {missing}: run `python -m bench.pool all` first")
    like, cpu = "dclm_like", Path(__file__).resolve().parent / "results" / "ablation.json"
    if cpu.exists():
        like = json.loads(cpu.read_text()).get("verdict", {}).get("best_arm", like)
    size = json.loads(exports[like].read_text())
    subset = sum(len(t.encode("utf-8")) + 1 for _, t in _documents(exports[like]))
    info = {"tokens": args.tokens, "random_like": like, "arms": {}}
    for arm, manifest in exports.items():
        info["arms"][arm] = pack_arm(manifest, args.tokens, out / f"{arm}.jsonl.gz")
        print(f"{arm}: {info['arms'][arm]}", flush=True)
    random_arm = f"random_raw_as_{like}"
    info["arms"][random_arm] = pack_arm(exports["raw"], args.tokens, out / f"{random_arm}.jsonl.gz", subset=subset)
    manifest = json.loads((work / "pool_manifest.json").read_text())
    for name, path in manifest["evaluation_domains"].items():
        from jobs.proxy.trainer import heldout_texts

        (out / f"heldout-{name}.txt").write_text("\n\n".join(heldout_texts((path,))) + "\n", encoding="utf-8")
    info["source_table_versions"] = {arm: json.loads(p.read_text())["table_version"] for arm, p in exports.items()}
    info["random_like_documents"] = size["documents"]
    (out / "pack.json").write_text(json.dumps(info, indent=2) + "\n")
    total = sum(f.stat().st_size for f in out.iterdir())
    print(f"packed into {out}: {total / 2**20:.1f} MiB")


def train(args) -> dict:
    from jobs.proxy import compare, trainer
    from jobs.proxy.trainer import heldout_domains
    from udfs import lm

    packed = Path(args.packed)
    info = json.loads((packed / "pack.json").read_text())
    domains = heldout_domains(tuple(f"{p.stem[len('heldout-'):]}={p}" for p in sorted(packed.glob("heldout-*.txt"))))
    runs: dict[str, list[dict]] = {}
    started = time.perf_counter()
    for arm, meta in info["arms"].items():
        with gzip.open(packed / f"{arm}.jsonl.gz", "rt", encoding="utf-8") as fh:
            texts = [json.loads(line)["text"] for line in fh]
        for seed in range(args.seeds):
            spec = trainer.spec_for(args.scale, seed=seed, device=args.device, tokens=args.tokens or None)
            rng = np.random.default_rng(seed)          # documents in a per-seed order, as train-proxy does
            order = rng.permutation(len(texts))
            seeded = lm.encode_documents([texts[i] for i in order])
            t0 = time.perf_counter()
            _, history = trainer.train(spec, seeded, domains, excluded=EXCLUDED)
            item = {"seed": seed, "tokens": history.eval_tokens[-1], "eval_tokens": history.eval_tokens,
                    "eval_bpb": history.eval_bpb, "eval_bpb_by_domain": history.eval_bpb_by_domain,
                    "final_heldout_bpb": history.eval_bpb[-1],
                    "final_heldout_bpb_by_domain": {k: v[-1] for k, v in history.eval_bpb_by_domain.items()},
                    "tokens_per_second": history.tokens_per_second, "epochs": history.epochs,
                    "corpus_epochs": spec.tokens / max(1, meta["corpus_tokens"]), "seconds": time.perf_counter() - t0}
            runs.setdefault(arm, []).append(item)
            print(f"{arm} seed {seed}: {item['final_heldout_bpb']:.4f} bpb, {item['tokens_per_second']:,.0f} tokens/s, "
                  f"{item['seconds']:.0f}s (total {time.perf_counter() - started:.0f}s)", flush=True)
    summary = compare.summarize(runs, "raw")
    result = {"scale": args.scale, "seeds": args.seeds, "device": lm.device_for(args.device),
              "seconds": time.perf_counter() - started, "pack": info, "summary": summary,
              "curves": {a: [{"tokens": r["eval_tokens"], "bpb": r["eval_bpb"]} for r in items] for a, items in runs.items()},
              "excluded": list(EXCLUDED),
              "command": f"python -m bench.ablation_gpu train --packed {packed} --scale {args.scale} --seeds {args.seeds}"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation_gpu.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    for arm, s in summary.items():
        print(f"{arm:28s} bpb {compare.fmt(s['heldout_bpb'])}  speedup {compare.fmt(s['speedup'], 2, 'x')}  "
              f"epochs {s['corpus_epochs']:.2f}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ablation_gpu", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("pack", help="pack the arms' exported shards and the evaluation domains (here)")
    p.add_argument("--work", default=str(WORK))
    p.add_argument("--tokens", type=int, default=12_000_000, help="bytes per arm (default 12M)")
    p.add_argument("--out", help="folder (default WORK/gpu-pack)")
    p = sub.add_parser("train", help="train every arm and seed from a pack (on the GPU machine)")
    p.add_argument("--packed", required=True)
    p.add_argument("--scale", default="small")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--tokens", type=int, default=0, help="budget per run (default: the pack's size)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=os.environ.get("OUT", "bench/results"))
    args = parser.parse_args(argv)
    if args.step == "pack":
        pack(args)
    else:
        if not args.tokens:
            args.tokens = json.loads((Path(args.packed) / "pack.json").read_text())["tokens"]
        train(args)


if __name__ == "__main__":
    sys.exit(main())
