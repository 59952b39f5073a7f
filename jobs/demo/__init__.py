"""The demo: a generated sample crawl and its companions (reference text, held-out text, an evaluation set
that some pages quote), run through `lakesift run` with every stage switched on. `make run` runs it."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from jobs.demo import sample_crawl
from jobs.runtime.config import JobConfig, option

# Proxy tokens (bytes) per sample page: dclm_like keeps the top 10% by quality, about 65 bytes per page of
# the sample crawl, so the budget repeats its corpus about six times; a small crawl's few kept pages may
# need more, hence the demo's higher max_epochs.
DEMO_TOKENS_PER_PAGE = 375
DEMO_MAX_EPOCHS = 20.0


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    pages: int = option(400, "HTML pages in the sample crawl")
    seed: int = option(7, "seed of the sample crawl")
    crawl: str = option("DEMO-2026-01", "crawl id of the sample crawl")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pages < 10:
            raise ValueError("the demo needs at least 10 pages")


@dataclass(frozen=True)
class Samples:
    crawl: Path
    reference_text: Path
    heldout: Path
    evals: Path


def write_samples(cfg: Config, progress=sys.stderr) -> Samples:
    """The demo's inputs under <home>/samples, written once per (crawl, seed, pages)."""
    root = Path(cfg.home) / "samples"
    out = Samples(root / f"{cfg.crawl}-seed{cfg.seed}-{cfg.pages}p.warc.gz", root / "reference-text.txt",
                  root / "heldout-text.txt", root / f"evals-seed{cfg.seed}")
    if not out.crawl.exists():
        counts = sample_crawl.write_sample_crawl(out.crawl, sample_crawl.SampleCrawlSpec(
            pages=cfg.pages, seed=cfg.seed, crawl=cfg.crawl, quoted_evals=max(1, cfg.pages // 100)))
        print(f"wrote sample crawl {out.crawl} ({counts['html']} HTML pages, {counts['non_html']} non-HTML, "
              f"{counts.get('corrupt', 0)} corrupt record)", file=progress)
    if not out.reference_text.exists():
        sample_crawl.write_reference_text(out.reference_text)
    if not out.heldout.exists():
        sample_crawl.write_reference_text(out.heldout, paragraphs=150, seed=12)
    if not out.evals.exists():
        sample_crawl.write_sample_evals(out.evals, cfg.seed)
    return out


def pipeline_config(cfg: Config, samples: Samples):
    from jobs import pipeline

    return pipeline.Config(**cfg.location(), inputs=(str(samples.crawl),), recipes=("raw", "dclm_like"),
                           reference_text=(str(samples.reference_text),), evals=str(samples.evals),
                           heldout=(f"reference={samples.heldout}",), neural="embedding", ablate="tiny", seeds=1,
                           tokens=DEMO_TOKENS_PER_PAGE * cfg.pages,
                           max_epochs=DEMO_MAX_EPOCHS, shards=2)
