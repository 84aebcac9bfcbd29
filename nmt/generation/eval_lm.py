"""`nmt eval-lm`: a language model's per-token loss and perplexity on a split of a monolingual data dir.

Shape legend: B blocks in a batch, T input length (context + block), V vocabulary.

The split is read as one token stream, its sentences one after another, each its pieces + EOS
(nmt.data.monolingual), cut every N = --tokens-per-sample tokens into blocks that tile it, so
every token is scored exactly once. A block of targets [s, e) reads, as in training, the stream
shifted right by one (BOS before the stream's first token). With --context-window C its input
starts up to C tokens earlier, at max(0, s - C): the model sees those tokens as context, and their
predictions are not scored (fairseq's LMContextWindowDataset). So N + C must fit the model's target
positions, and more context can only help a model that uses it.

The loss of a token is -log_softmax(logits)[target] in float32 (nats); the result is their sum
over the scored tokens and its mean, the loss in nats per token; in bits it is / ln 2, and the
perplexity is exp(nats) = 2**bits. `token_nll` is the one place this is computed: the Python
class (nmt.language_model) scores texts with it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from nmt.checkpoint import Loaded, load_model
from nmt.config import EvalLMConfig, check_eval_lm
from nmt.data.dataset import TokenArray, read_meta
from nmt.data.monolingual import lm_blocks, lm_sample, load_text, pad_batch, stream_offsets
from nmt.data.tokenizer import PAD
from nmt.device import process_settings, resolve_device
from nmt.errors import UserError
from nmt.generation.generate import amp_autocast, check_data_vocab
from nmt.generation.prompts import LANGUAGE_MODELING, model_kind
from nmt.tasks.checks import data_tasks

LN2 = math.log(2)


@dataclass
class LMScore:
    """Summed negative log-likelihood (nats) of `tokens` scored tokens, and what follows from it."""

    tokens: int
    nll: float

    @property
    def loss(self) -> float:
        """Nats per token (the mean negative log-likelihood)."""
        return self.nll / self.tokens if self.tokens else math.nan

    @property
    def bits(self) -> float:
        """Bits per token: loss / ln 2."""
        return self.loss / LN2

    @property
    def perplexity(self) -> float:
        """exp(loss) = 2**bits."""
        return math.exp(self.loss) if self.tokens else math.nan


def token_nll(model: nn.Module, tokens: Tensor, target: Tensor) -> Tensor:
    """(B, T) float32 negative log-likelihood of target (B, T) given tokens (B, T) BOS-first (or a
    stream block); 0 where target is PAD (padding, or context that is not scored)."""
    with torch.inference_mode():
        lprobs = torch.log_softmax(model(tokens).float(), dim=-1)  # (B, T, V)
        nll = -lprobs.gather(2, target.unsqueeze(2)).squeeze(2)
        return nll.masked_fill(target.eq(PAD), 0.0)


def context_blocks(sizes: np.ndarray, n: int, c: int) -> np.ndarray:
    """(K, 4) int64 rows (input start, block start, block end, bos): the blocks of N scored tokens
    tiling the stream of sentences of `sizes` pieces, each with up to c tokens of context before it."""
    blocks = lm_blocks(sizes, n, "none")  # (K, 3) start, end, bos
    first = np.maximum(blocks[:, 0] - c, 0)
    return np.stack([first, blocks[:, 0], blocks[:, 1], first == 0], 1).astype(np.int64)


def block_sample(text: TokenArray, so: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(input (T,), target (T,)) of one context_blocks row: the targets of the context are PAD."""
    first, start, end, bos = (int(x) for x in row)
    inp, target = lm_sample(text, so, np.array([first, end, bos]))
    target = target.copy()
    target[: start - first] = PAD
    return inp, target


def score_text(model: nn.Module, text: TokenArray, n: int, c: int, cfg: EvalLMConfig, device: torch.device) -> LMScore:
    """The summed loss of every token of `text`'s stream in blocks of n with c tokens of context."""
    rows = context_blocks(np.asarray(text.sizes), n, c)
    so = stream_offsets(np.asarray(text.sizes))
    per_batch = max(1, cfg.max_tokens // (n + c))  # blocks of at most n + c input tokens
    nll, count = torch.zeros((), dtype=torch.float64, device=device), 0
    for first in range(0, len(rows), per_batch):
        idx = np.arange(first, min(first + per_batch, len(rows)))
        batch = pad_batch([block_sample(text, so, rows[i]) for i in idx], idx).to(device)
        with amp_autocast(device, cfg.amp):
            nll += token_nll(model, batch.tokens, batch.target).double().sum()
        count += batch.ntokens
    return LMScore(count, float(nll))


def trained_block(loaded: Loaded) -> int:
    """The block length the model was trained on (`nmt train --tokens-per-sample`), or its positions when
    the checkpoint does not say (a file written outside training). Positions past the trained block were
    never trained, so scoring longer blocks by default would measure untrained embeddings."""
    train_cfg = loaded.payload.get("train_state", {}).get("train_config", {})
    block = train_cfg.get("lm", {}).get("tokens_per_sample") if isinstance(train_cfg, dict) else None
    return int(block) if isinstance(block, int) and block > 0 else int(loaded.model.max_positions()[1])


def run(cfg: EvalLMConfig) -> tuple[LMScore, dict]:
    """`nmt eval-lm`: check, load, score; returns the score and what was scored (subset, N, C)."""
    check_eval_lm(cfg)
    meta = read_meta(cfg.data)
    if LANGUAGE_MODELING not in data_tasks(meta):
        raise UserError(
            f"{cfg.data} holds parallel data for translation; eval-lm scores a monolingual data dir "
            "(nmt preprocess --only-source -s LANG)"
        )
    device = resolve_device(cfg.device)
    if cfg.amp == "fp16" and device.type != "cuda":
        raise UserError("--amp fp16 needs a CUDA device (use bf16 on CPU)")
    loaded = load_model(cfg.path, device)
    if model_kind([loaded], cfg.path) != LANGUAGE_MODELING:
        raise UserError(f"{cfg.path} is a translation model ({loaded.arch}); eval-lm scores a language model")
    check_data_vocab(cfg.data, meta, loaded)
    positions = int(loaded.model.max_positions()[1])
    c = cfg.context_window
    n = cfg.tokens_per_sample if cfg.tokens_per_sample is not None else min(trained_block(loaded), positions) - c
    if n < 1 or n + c > positions:
        raise UserError(
            f"--tokens-per-sample {n} + --context-window {c} must be between 1 and the model's {positions} positions"
        )
    text = load_text(cfg.data, cfg.gen_subset, meta)
    with process_settings():
        score = score_text(loaded.model.eval(), text, n, c, cfg, device)
    return score, {"subset": cfg.gen_subset, "tokens_per_sample": n, "context_window": c}


def report(score: LMScore, info: dict) -> list[str]:
    """The text lines of `nmt eval-lm`."""
    return [
        f"{info['subset']}: {score.tokens} tokens in blocks of {info['tokens_per_sample']} "
        f"with {info['context_window']} tokens of context",
        f"loss {score.loss:.4f} nats/token ({score.bits:.4f} bits), perplexity {score.perplexity:.2f}",
    ]


def report_json(score: LMScore, info: dict) -> dict:
    """The JSON object of `nmt eval-lm --json`."""
    return {
        **info,
        "tokens": score.tokens,
        "loss_nats": score.loss,
        "loss_bits": score.bits,
        "perplexity": score.perplexity,
    }
