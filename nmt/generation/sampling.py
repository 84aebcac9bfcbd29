"""Greedy search and sampling: K independent rows per sentence, each ending at its own EOS.

Shape legend and the rules they share with beam search: nmt.generation.decoding.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from nmt.config import GenerateConfig
from nmt.generation.decoding import (
    BOS,
    EOS,
    PAD,
    Ensemble,
    Hypothesis,
    adjust_lprobs,
    collect,
    common_head,
    force_prefix,
    max_lengths,
    normalize,
    normalize_rows,
    prefix_lengths,
)


def sample_tokens(lprobs: Tensor, cfg: GenerateConfig, gen: torch.Generator) -> Tensor:
    """Draw one token per row (N,) from lprobs (N, V) restricted by top-k / top-p."""
    lp = lprobs
    if cfg.sampling_topk > 0:
        kth = lp.topk(min(cfg.sampling_topk, lp.size(1)), dim=1).values[:, -1:]  # (N, 1)
        lp = lp.masked_fill(lp < kth, -math.inf)
    if 0 < cfg.sampling_topp < 1:
        sorted_lp, order = lp.sort(dim=1, descending=True)
        mass_before = sorted_lp.exp().cumsum(dim=1) - sorted_lp.exp()  # (N, V) mass of better tokens
        drop_sorted = mass_before >= cfg.sampling_topp  # keeps the smallest set reaching top-p
        drop = torch.zeros_like(drop_sorted).scatter_(1, order, drop_sorted)
        lp = lp.masked_fill(drop, -math.inf)
    return torch.multinomial(lp.exp(), 1, generator=gen).squeeze(1)


@torch.inference_mode()
def independent_search(
    models: list[nn.Module],
    src: Tensor,
    src_pad_mask: Tensor,
    cfg: GenerateConfig,
    k: int,
    need_attn: bool,
    prefix: Optional[Tensor] = None,
) -> list[list[Hypothesis]]:
    """Greedy (k=1, argmax) or sampling (k samples): rows never interact, a row ends at its EOS.

    prefix (B, P) right-padded with PAD, or None: tokens each sentence is forced to start with
    (nmt.generation.decoding); its hypotheses hold the tokens after them."""
    bsz, device = src.size(0), src.device
    rows = torch.arange(bsz, device=device).repeat_interleave(k)  # (N,) sentence of each row
    ens = Ensemble(models, src, src_pad_mask, cfg.temperature)
    start = prefix_lengths(prefix)  # (B,) or None
    head = common_head(prefix, start)  # (B, m): fed at once by the first decode call
    m = head.size(1) if head is not None else 0
    row_max = max_lengths(models, src_pad_mask, cfg, start).index_select(0, rows)  # (N,) prefix included
    live_start = start.index_select(0, rows) if start is not None else None  # (N_live,)
    live_prefix = prefix.index_select(0, rows) if prefix is not None else None  # (N_live, P)
    n_rows = rows.numel()
    cap = int(row_max.max()) + 1 if n_rows else 1
    out_tok = torch.full((n_rows, cap), PAD, dtype=torch.long, device=device)
    out_pos = torch.zeros(n_rows, cap, device=device)
    out_len = torch.zeros(n_rows, dtype=torch.long, device=device)
    out_score = torch.full((n_rows,), -math.inf, device=device)
    out_attn = torch.zeros(n_rows, cap, src.size(1), device=device) if need_attn else None
    gen = None
    if cfg.sampling:
        gen = torch.Generator(device=device)
        gen.manual_seed(cfg.seed)

    live = torch.arange(n_rows, device=device)  # (N_live,) output row of each live row
    tokens = torch.full((n_rows, 1), BOS, dtype=torch.long, device=device)  # (N_live, step+1)
    if m:
        tokens = torch.cat([tokens, head.index_select(0, rows)], dim=1)
    live_max = row_max
    cum = torch.zeros(n_rows, device=device)  # (N_live,) cumulative log-prob
    step = m
    while live.numel() > 0:
        lprobs, attn = ens.first_step(k, need_attn, head) if step == m else ens.step(tokens[:, -1:], need_attn)
        lprobs = adjust_lprobs(lprobs, tokens, step, live_max, cfg, live_start)
        if live_prefix is not None and live_start is not None:
            lprobs = force_prefix(lprobs, step, live_prefix, live_start)
        tok = sample_tokens(lprobs, cfg, gen) if cfg.sampling else lprobs.argmax(dim=1)  # (N_live,)
        if live_prefix is not None and live_start is not None and step < live_prefix.size(1):
            tok = torch.where(live_start > step, live_prefix[:, step], tok)  # a forced row takes its prefix token
        out_tok[live, step] = tok
        lp = lprobs.gather(1, tok[:, None]).squeeze(1)  # (N_live,)
        out_pos[live, step] = lp
        cum = cum + lp
        if out_attn is not None and attn is not None:
            out_attn[live, step] = attn
        done = (tok == EOS) | (live_max <= step)
        step += 1
        if bool(done.any()):
            out_len[live[done]] = step
            if live_start is None:
                out_score[live[done]] = normalize(cum[done], step, cfg.lenpen)
            else:  # the length counts the tokens after the prefix
                out_score[live[done]] = normalize_rows(cum[done], step - live_start[done], cfg.lenpen)
            keep = (~done).nonzero().squeeze(1)
            live, live_max, cum = live[keep], live_max[keep], cum[keep]
            if live_start is not None and live_prefix is not None:
                live_start, live_prefix = live_start[keep], live_prefix[keep]
            tokens = torch.cat([tokens[keep], tok[keep, None]], dim=1)
            if keep.numel():
                ens.select(keep, keep)
        else:
            tokens = torch.cat([tokens, tok[:, None]], dim=1)

    return collect(out_tok, out_pos, out_len, out_score, out_attn, src_pad_mask, k, cfg.nbest, start)
