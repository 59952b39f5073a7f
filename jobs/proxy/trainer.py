"""Training a proxy model: plain torch, no Spark (the GPU machine and tests call it directly).

Documents arrive as one token stream (udfs/lm.encode_documents, shuffled with the seed by the caller);
it is cut into sequences of context + 1 tokens, visited in a seeded random order, epoch after epoch when
the budget exceeds the stream. AdamW, linear warmup then cosine decay to 10% of the peak, gradient
clipping at 1.0, bf16 autocast on CUDA. Held-out bits per byte is measured every eval_every steps, against
tokens seen, which is what recipe comparisons and the training-speedup figure are computed from.
Deterministic on CPU for a seed (torch's deterministic algorithms, a fixed thread count).
"""
from __future__ import annotations

import math
import re
import time
from pathlib import Path
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from udfs import lm

# Scale presets: model shape, tokens per step, and the token budget as a multiple of the parameters.
# tiny is sized for a 2-core CPU (minutes per run); the others are meant for a GPU.
MAX_EPOCHS = 8.0           # most repetitions of a corpus a proxy run may make (Muennighoff et al. 2023, "Scaling
                           # Data-Constrained Language Models": ~4 epochs cost little; past ~16 repeats add ~nothing)
SCALES = {
    "tiny": dict(model=lm.ModelConfig(d_model=96, n_layers=3, n_heads=4, context=128), batch=16, multiplier=4, lr=3e-3),
    "small": dict(model=lm.ModelConfig(d_model=256, n_layers=6, n_heads=8, context=512), batch=32, multiplier=20, lr=1.5e-3),
    "base": dict(model=lm.ModelConfig(d_model=512, n_layers=8, n_heads=8, context=1024), batch=32, multiplier=20, lr=1e-3),
    "large": dict(model=lm.ModelConfig(d_model=768, n_layers=12, n_heads=12, context=1024), batch=64, multiplier=20, lr=6e-4),
}


MIN_STEPS_PER_EVAL = 5
HELDOUT_BYTES = 60_000          # held-out text evaluated at every evaluation point (bytes, from the start)
SUBSET_SEED_OFFSET = 1_000_003  # random subsets are ordered by another seed than their corpus
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_DOMAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")     # a plain identifier: it becomes a metric name


@dataclass(frozen=True)
class TrainSpec:
    model: lm.ModelConfig
    tokens: int                      # training budget
    batch: int                       # sequences per step
    lr: float
    seed: int = 0
    warmup_fraction: float = 0.05
    weight_decay: float = 0.1
    eval_points: int = 20            # held-out evaluations over the run (at most one per MIN_STEPS_PER_EVAL steps)
    device: str = "auto"
    threads: int = 0                 # CPU threads (0: torch's default)

    @property
    def steps(self) -> int:
        return max(1, self.tokens // (self.batch * self.model.context))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


def spec_for(scale: str, seed: int = 0, device: str = "auto", tokens: int | None = None, **overrides) -> TrainSpec:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    preset = SCALES[scale]
    model = preset["model"]
    budget = tokens or preset["multiplier"] * model.parameters()
    return TrainSpec(model=model, tokens=budget, batch=preset["batch"], lr=preset["lr"], seed=seed, device=device, **overrides)


@dataclass
class History:
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    eval_tokens: list[int] = field(default_factory=list)
    eval_bpb: list[float] = field(default_factory=list)          # mean over the deciding domains
    eval_bpb_by_domain: dict[str, list[float]] = field(default_factory=dict)
    tokens_per_second: float = 0.0
    epochs: float = 0.0


def as_domains(heldout) -> dict[str, list[str]]:
    """Held-out text as named evaluation domains: a dict as given, a plain list as one domain."""
    return dict(heldout) if isinstance(heldout, dict) else {"heldout": list(heldout)}


def domains_bpb(model, domains: dict[str, list[str]], device: str) -> dict[str, float]:
    return {name: heldout_bpb(model, texts, device) for name, texts in domains.items()}


def deciding_mean(by_domain: dict[str, float], excluded: Sequence[str] = ()) -> float:
    """Mean bits per byte over the domains that decide (all but `excluded`; all when that leaves none)."""
    keep = [v for k, v in by_domain.items() if k not in excluded] or list(by_domain.values())
    return float(np.mean(keep))


def heldout_domains(specs: tuple[str, ...], limit: int = HELDOUT_BYTES) -> dict[str, list[str]]:
    """Evaluation domains from NAME=PATH specs (or bare paths, named by file stem): each domain's first
    `limit` bytes of blank-line-separated blocks. Domains are measured and reported separately."""
    domains: dict[str, list[str]] = {}
    for spec in specs:
        name, eq, path = spec.partition("=")
        if not eq:
            name, path = Path(spec).stem.replace("-", "_").replace(".", "_"), spec
        if not _DOMAIN_NAME.match(name):
            raise ValueError(f"invalid held-out domain name {name!r}: use letters, digits and underscores")
        if not Path(path).is_file():
            raise ValueError(f"held-out domain {name}: no such file {path}")
        if name in domains:
            raise ValueError(f"held-out domain {name} given twice")
        domains[name] = heldout_texts((path,), limit)
    return domains


def heldout_texts(paths: tuple[str, ...], limit: int = HELDOUT_BYTES) -> list[str]:
    """Blank-line-separated blocks of the held-out files (lines holding only spaces count as blank), in
    file order, up to `limit` bytes in all (the last block cut to fit)."""
    texts, used = [], 0
    for path in paths:
        for block in _BLANK_LINE.split(Path(path).read_text(encoding="utf-8", errors="replace")):
            block = block.strip()
            if not block:
                continue
            room = limit - used
            encoded = block.encode()
            if len(encoded) >= room:
                texts.append(encoded[:room].decode("utf-8", errors="ignore"))
                return texts
            texts.append(block)
            used += len(encoded)
    return texts


def lr_at(step: int, spec: TrainSpec) -> float:
    warmup = max(1, int(spec.steps * spec.warmup_fraction))
    if step < warmup:
        return spec.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, spec.steps - warmup)
    return spec.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(spec: TrainSpec, stream: np.ndarray, heldout: Sequence[str] | dict[str, Sequence[str]],
          on_step: Callable[[int, float, float], None] | None = None,
          on_eval: Callable[[int, int, float], None] | None = None, excluded: Sequence[str] = ()):
    """Train from scratch on `stream` (uint16 tokens). `heldout` is a list of texts or {domain: texts};
    every evaluation measures each domain, and eval_bpb is the mean over the domains not `excluded`.
    Returns (model, History)."""
    domains = as_domains(heldout)
    torch = lm._torch()
    device = lm.device_for(spec.device)
    if spec.threads:
        torch.set_num_threads(spec.threads)
    torch.manual_seed(spec.seed)
    if device == "cpu":
        torch.use_deterministic_algorithms(True)
    width = spec.model.context + 1
    n_seq = len(stream) // width
    if n_seq < spec.batch:
        raise ValueError(f"{len(stream):,} tokens make {n_seq} sequences of {width}; a step needs {spec.batch}")
    sequences = torch.from_numpy(stream[: n_seq * width].astype(np.int64).reshape(n_seq, width))
    model = lm.build_model(spec.model).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=spec.lr, betas=(0.9, 0.95))
    rng = np.random.default_rng(spec.seed)
    order, cursor, epochs = rng.permutation(n_seq), 0, 0
    history = History()
    # a held-out evaluation costs about as much as several training steps: short runs evaluate less often
    eval_every = max(spec.steps // spec.eval_points, min(MIN_STEPS_PER_EVAL, spec.steps))
    started = time.perf_counter()
    trained_tokens = 0
    for step in range(spec.steps):
        if cursor + spec.batch > n_seq:
            order, cursor, epochs = rng.permutation(n_seq), 0, epochs + 1
        batch = sequences[order[cursor:cursor + spec.batch]].to(device)
        cursor += spec.batch
        lr = lr_at(step, spec)
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        with lm.autocast(device):
            logits = model(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        trained_tokens += batch[:, 1:].numel()
        value = float(loss.item())
        if not math.isfinite(value):
            raise FloatingPointError(f"training loss became {value} at step {step}; lower the learning rate")
        history.steps.append(step)
        history.loss.append(value)
        history.lr.append(lr)
        if on_step:
            on_step(step, value, lr)
        if (step + 1) % eval_every == 0 or step + 1 == spec.steps:
            model.eval()
            by_domain = domains_bpb(model, domains, device)
            bpb = deciding_mean(by_domain, excluded)
            history.eval_tokens.append(trained_tokens)
            history.eval_bpb.append(bpb)
            for name, value in by_domain.items():
                history.eval_bpb_by_domain.setdefault(name, []).append(value)
            if on_eval:
                on_eval(step, trained_tokens, bpb)
    elapsed = time.perf_counter() - started
    history.tokens_per_second = trained_tokens / elapsed if elapsed else 0.0
    history.epochs = epochs + cursor / n_seq
    model.eval()
    return model, history


def heldout_bpb(model, texts: Sequence[str], device: str) -> float:
    """Bits per byte over all held-out texts together (bytes-weighted)."""
    bpb, sizes = lm.bits_per_byte(model, texts, device)
    keep = sizes > 0
    return float((bpb[keep] * sizes[keep]).sum() / sizes[keep].sum())


def tokens_to_reach(eval_tokens: Sequence[int], eval_bpb: Sequence[float], target: float) -> float | None:
    """Tokens seen when the held-out curve first reaches `target`, interpolated linearly between
    evaluations (from the origin-free first point); None when it never does."""
    previous = None
    for tokens, bpb in zip(eval_tokens, eval_bpb):
        if bpb <= target:
            if previous is None or previous[1] == bpb:
                return float(tokens)
            t0, b0 = previous
            return float(t0 + (b0 - target) / (b0 - bpb) * (tokens - t0))
        previous = (tokens, bpb)
    return None
