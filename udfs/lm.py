"""A byte-level causal language model: the proxy model of `train-proxy` and the reference model of neural
scoring. Plain torch, no Spark: runs on the GPU machine and in tests.

Tokenizer: UTF-8 bytes (ids 0..255) and one end-of-text id (256) between documents. Every arm of a
comparison shares it, and losses convert directly to bits per byte (bpb = nats / ln 2 / bytes), which
stays comparable across tokenizers and models.
Model: a GPT-2-style decoder (Radford et al. 2019): learned positions, pre-LayerNorm blocks of causal
self-attention (torch's scaled_dot_product_attention) and a GELU MLP, tied input/output embeddings.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

EOT = 256                 # end of text
VOCAB = 257
LN2 = math.log(2.0)


def encode(text: str) -> list[int]:
    return list((text or "").encode("utf-8", errors="replace"))


def encode_documents(texts: Sequence[str]) -> np.ndarray:
    """Documents as one uint16 token stream, each followed by EOT."""
    parts = []
    for t in texts:
        b = np.frombuffer((t or "").encode("utf-8", errors="replace"), dtype=np.uint8).astype(np.uint16)
        parts.append(b)
        parts.append(np.array([EOT], dtype=np.uint16))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)


@dataclass(frozen=True)
class ModelConfig:
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    context: int = 256
    mlp_ratio: int = 4
    vocab: int = VOCAB

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        if min(self.d_model, self.n_layers, self.n_heads, self.context) < 1:
            raise ValueError("model dimensions must be positive")

    def parameters(self) -> int:
        """Trainable parameters (tied embedding counted once)."""
        d, L, m = self.d_model, self.n_layers, self.mlp_ratio
        per_block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (m * d * d + m * d) + (m * d * d + d)
        return self.vocab * d + self.context * d + L * per_block + 2 * d

    def to_dict(self) -> dict:
        return asdict(self)


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise RuntimeError("proxy models and neural scoring need torch: `pip install torch` (make setup installs it)") from exc
    return torch


def build_model(cfg: ModelConfig):
    """A CausalLM for `cfg` (class defined lazily so importing this module never needs torch)."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            d = cfg.d_model
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc, self.out = nn.Linear(d, cfg.mlp_ratio * d), nn.Linear(cfg.mlp_ratio * d, d)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            heads = lambda z: z.view(b, t, cfg.n_heads, d // cfg.n_heads).transpose(1, 2)
            y = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
            return x + self.out(F.gelu(self.fc(self.ln2(x))))

    class CausalLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = cfg
            self.tok = nn.Embedding(cfg.vocab, cfg.d_model)
            self.pos = nn.Embedding(cfg.context, cfg.d_model)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.n_layers))
            self.ln_f = nn.LayerNorm(cfg.d_model)
            self.apply(self._init)
            for name, p in self.named_parameters():            # GPT-2: scaled init of residual projections
                if name.endswith(("proj.weight", "out.weight")):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))

        @staticmethod
        def _init(module):
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def forward(self, idx):
            t = idx.shape[1]
            x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))[None]
            for block in self.blocks:
                x = block(x)
            return self.ln_f(x) @ self.tok.weight.T               # tied output embedding

    return CausalLM()


def device_for(requested: str = "auto") -> str:
    """'auto': CUDA when present, else CPU; 'cuda' fails loudly without a GPU."""
    torch = _torch()
    if requested not in ("auto", "cuda", "cpu"):
        raise ValueError("device must be auto, cuda or cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda was asked for, but torch sees no CUDA device (torch.cuda.is_available() is False)")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def autocast(device: str):
    """bf16 autocast on CUDA, nothing on CPU."""
    torch = _torch()
    import contextlib

    return torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else contextlib.nullcontext()


def _pad(seqs: list[list[int]], device: str):
    torch = _torch()
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), EOT, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = True
    return ids.to(device), mask.to(device)


def token_logprobs(model, seqs: list[list[int]], device: str):
    """log p(seq[t] | seq[<t]) for t >= 1 of every sequence (each at most model context long): a list of
    1-D float tensors on CPU, one per sequence, of length len(seq) - 1."""
    torch = _torch()
    ids, mask = _pad(seqs, device)
    with torch.inference_mode(), autocast(device):
        logits = model(ids[:, :-1]).float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
    return [logp[i, : len(s) - 1].cpu() for i, s in enumerate(seqs)]


def _windows(tokens: list[int], context: int) -> list[list[int]]:
    """EOT-prefixed windows of at most `context` tokens predicting every token exactly once."""
    step = context - 1
    return [[EOT] + tokens[i:i + step] for i in range(0, max(len(tokens), 1), step)] if tokens else []


def bits_per_byte(model, texts: Sequence[str], device: str, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(bits per byte, bytes) of each text: every byte predicted from the bytes before it within windows of
    the model's context (each window starts with EOT). Empty texts get NaN."""
    context = model.config.context
    jobs = []                                  # (text index, window)
    for i, t in enumerate(texts):
        for w in _windows(encode(t), context):
            jobs.append((i, w))
    nats = np.zeros(len(texts))
    order = sorted(range(len(jobs)), key=lambda j: len(jobs[j][1]))        # length-sorted batches: less padding
    for start in range(0, len(order), batch_size):
        chunk = [jobs[j] for j in order[start:start + batch_size]]
        for (i, _), lp in zip(chunk, token_logprobs(model, [w for _, w in chunk], device)):
            nats[i] -= float(lp.sum())
    sizes = np.array([len(encode(t)) for t in texts], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, nats / LN2 / sizes, np.nan), sizes


def continuation_logprobs(model, contexts: Sequence[str], continuations: Sequence[str], device: str,
                          batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(sum of log p(continuation bytes | context), continuation bytes) per pair. Contexts are cut from the
    left to fit the model's context; the continuation is never cut (an error if it alone does not fit)."""
    context = model.config.context
    seqs, spans = [], []
    for ctx, cont in zip(contexts, continuations):
        c = encode(cont)
        if len(c) + 1 > context:
            raise ValueError(f"a continuation of {len(c)} bytes does not fit a context of {context}")
        prefix = [EOT] + encode(ctx)
        prefix = prefix[-(context - len(c)):]
        seqs.append(prefix + c)
        spans.append(len(c))
    totals = np.zeros(len(seqs))
    order = sorted(range(len(seqs)), key=lambda j: len(seqs[j]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        for j, lp in zip(idx, token_logprobs(model, [seqs[j] for j in idx], device)):
            totals[j] = float(lp[-spans[j]:].sum()) if spans[j] else 0.0
    return totals, np.array(spans, dtype=np.float64)


def greedy_matches(model, contexts: Sequence[str], continuations: Sequence[str], device: str,
                   batch_size: int = 16) -> np.ndarray:
    """Whether the model's most likely next byte is the continuation's, at every continuation position
    (teacher-forced greedy decoding, as LAMBADA scoring does)."""
    torch = _torch()
    context = model.config.context
    out = np.zeros(len(contexts), dtype=bool)
    for start in range(0, len(contexts), batch_size):
        seqs, spans = [], []
        for ctx, cont in zip(contexts[start:start + batch_size], continuations[start:start + batch_size]):
            c = encode(cont)
            prefix = ([EOT] + encode(ctx))[-(context - len(c)):]
            seqs.append(prefix + c)
            spans.append(len(c))
        ids, _ = _pad(seqs, device)
        with torch.inference_mode(), autocast(device):
            pred = model(ids[:, :-1]).float().argmax(-1).cpu()
        for k, (s, n) in enumerate(zip(seqs, spans)):
            target = torch.tensor(s[-n:])
            out[start + k] = bool((pred[k, len(s) - 1 - n: len(s) - 1] == target).all())
    return out


def load_folder(folder: str, device: str):
    """(model, config dict) of a saved byte LM: config.json + model.safetensors (never unpickled)."""
    import json
    import os

    from safetensors.torch import load_file

    with open(os.path.join(folder, "config.json")) as fh:
        config = json.load(fh)
    if config.get("format") != "lakesift-byte-lm":
        raise ValueError(f"{folder} holds no lakesift byte-level language model")
    model = build_model(ModelConfig(**config["model"]))
    model.load_state_dict(load_file(os.path.join(folder, "model.safetensors")))
    return model.to(device).eval(), config
