"""Running a model for its attention: teacher-forced capture as arrays, and the model's own translation.

Shape legend: B batch, H heads, S source length, T target length.

Kinds: `enc_self` (source x source), `dec_self` (decoder input x decoder input, causal: the
upper triangle is masked and shows as zero), `cross` (target x source: row i is the step that
predicts target piece i, columns are source pieces). Capture is one teacher-forced pass through
the model's explicit attention path: `encode(..., need_attn=True)` then
`decode(tgt_in, ..., need_attn=True)` over the whole target at once. Only the model protocol of
nmt.models is used, so every family is captured the same way.

When no target is given, the one forced through the model is its own beam translation
(`translate`, `translate_many`: nmt.generation's search, so the same hypotheses as `nmt generate`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from nmt.config import GenerateConfig
from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.generation.search import translate_batch
from nmt.viz.stats import KINDS


def capture_batch(
    model: torch.nn.Module, src: torch.Tensor, src_pad_mask: torch.Tensor, tgt_in: torch.Tensor
) -> dict[str, list[torch.Tensor]]:
    """Teacher-forced attention of a batch: {kind: [(B, H, T_q, T_k) per layer]} (kinds present only).

    src (B, S), src_pad_mask (B, S) True at padding, tgt_in (B, T) = BOS + pieces. Weights are
    float32 on the CPU; a family returning (B, T, S) for single-head attention gets H = 1.
    """
    with torch.inference_mode():
        memory, enc_attn = model.encode(src, src_pad_mask, need_attn=True)
        _, _, dec_attn = model.decode(tgt_in, memory, src_pad_mask, None, need_attn=True)
    out: dict[str, list[torch.Tensor]] = {}
    for group in (enc_attn or {}, dec_attn or {}):
        for kind, layers in group.items():
            if kind in KINDS and layers:
                out[kind] = [(w if w.dim() == 4 else w.unsqueeze(1)).float().cpu() for w in layers]
    return out


def capture_sentence(
    model: torch.nn.Module, src: Sequence[int], tgt: Sequence[int], device: torch.device | str = "cpu"
) -> dict[str, list[np.ndarray]]:
    """Attention of one sentence pair of piece ids (no specials): {kind: [(H, T_q, T_k) per layer]}.

    The model sees src + EOS and BOS + tgt; so enc_self is (S+1, S+1), dec_self (T+1, T+1) and
    cross (T+1, S+1), row i of cross being the step that predicts (tgt + EOS)[i].
    """
    src_t = torch.tensor([list(src) + [EOS]], dtype=torch.long, device=device)  # (1, S)
    tgt_in = torch.tensor([[BOS] + list(tgt)], dtype=torch.long, device=device)  # (1, T)
    attn = capture_batch(model, src_t, src_t.eq(PAD), tgt_in)
    return {kind: [w[0].numpy() for w in layers] for kind, layers in attn.items()}


def translate(model: torch.nn.Module, src: Sequence[int], beam: int, device: torch.device | str) -> list[int]:
    """The model's own translation of one sentence (piece ids, no EOS) with nmt.generation.decoding."""
    return translate_many(model, [src], beam, device)[0]


def translate_many(
    model: torch.nn.Module, sources: Sequence[Sequence[int]], beam: int, device: torch.device | str, batch: int = 32
) -> list[list[int]]:
    """Best hypotheses (piece ids, no EOS) of many sentences, in order, `batch` at a time."""
    cfg = GenerateConfig(beam=beam)
    out: list[list[int]] = []
    for start in range(0, len(sources), batch):
        chunk = [list(s) + [EOS] for s in sources[start : start + batch]]
        width = max(len(s) for s in chunk)
        src = torch.full((len(chunk), width), PAD, dtype=torch.long)  # (B, S)
        for i, s in enumerate(chunk):
            src[i, : len(s)] = torch.tensor(s)
        src = src.to(device)
        with torch.inference_mode():
            hyps = translate_batch([model], src, src.eq(PAD), cfg)
        for nbest in hyps:
            ids = nbest[0].tokens.tolist()
            out.append(ids[:-1] if ids and ids[-1] == EOS else ids)
    return out
