"""Beam search with tensor bookkeeping (the algorithm and stopping rule are documented in nmt.generation.decoding).

Shape legend: B sentences, Bl live sentences, K beam, N = Bl*K live rows (sentence-major:
row = local sentence * K + beam), V target vocabulary, S source length, C = 2K candidates.

Live beams: tokens (N, step+1) BOS + the tokens so far, pos (N, step) per-token log-probs, scores
(Bl, K) cumulative log-probs. With a forced prefix (P its width), sent_start (Bl,) and sent_prefix
(Bl, P) are the live sentences' prefix lengths and tokens. Finished hypotheses go to fixed buffers
of K slots per sentence (fin_* (B, K, ...)), filled best first; nothing is kept per hypothesis in
Python lists.
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


@torch.inference_mode()
def beam_search(
    models: list[nn.Module],
    src: Tensor,
    src_pad_mask: Tensor,
    cfg: GenerateConfig,
    need_attn: bool = False,
    prefix: Optional[Tensor] = None,
) -> list[list[Hypothesis]]:
    """Beam search of width cfg.beam; per sentence up to cfg.nbest hypotheses, best first.

    prefix (B, P) right-padded with PAD, or None: tokens each sentence is forced to start with
    (nmt.generation.decoding); its hypotheses hold the tokens after them."""
    bsz, k, device = src.size(0), cfg.beam, src.device
    ens = Ensemble(models, src, src_pad_mask, cfg.temperature, grouped=True)
    start = prefix_lengths(prefix)  # (B,) or None
    sent_start, sent_prefix = start, prefix  # (Bl,), (Bl, P) per live sentence
    head = common_head(prefix, start)  # (B, m): fed at once by the first decode call
    m = head.size(1) if head is not None else 0
    sent_max = max_lengths(models, src_pad_mask, cfg, start)  # (Bl,) per live sentence, prefix included
    cap = int(sent_max.max()) + 1 if bsz else 1  # longest hypothesis, EOS included

    fin_tok = torch.full((bsz, k, cap), PAD, dtype=torch.long, device=device)
    fin_pos = torch.zeros(bsz, k, cap, device=device)
    fin_len = torch.zeros(bsz, k, dtype=torch.long, device=device)
    fin_score = torch.full((bsz, k), -math.inf, device=device)
    fin_count = torch.zeros(bsz, dtype=torch.long, device=device)
    fin_attn = torch.zeros(bsz, k, cap, src.size(1), device=device) if need_attn else None

    sent = torch.arange(bsz, device=device)  # (Bl,) sentence index of each live sentence
    tokens = torch.full((bsz * k, 1), BOS, dtype=torch.long, device=device)
    if m:
        tokens = torch.cat([tokens, head.repeat_interleave(k, dim=0)], dim=1)  # (N, 1 + m)
    pos = torch.zeros(bsz * k, m, device=device)
    hist: Optional[Tensor] = torch.zeros(bsz * k, m, src.size(1), device=device) if need_attn else None
    scores = torch.zeros(bsz, k, device=device)
    scores[:, 1:] = -math.inf  # all beams start identical: only beam 0 may expand at the first step
    use_bound = cfg.unkpen >= 0  # every step log-prob <= 0, so scores only decrease
    ranks = torch.arange(2 * k, device=device)

    for step in range(m, cap):
        bl = sent.numel()
        lprobs, attn = ens.first_step(k, need_attn, head) if step == m else ens.step(tokens[:, -1:], need_attn)
        row_start = sent_start.repeat_interleave(k) if sent_start is not None else None  # (N,)
        lprobs = adjust_lprobs(lprobs, tokens, step, sent_max.repeat_interleave(k), cfg, row_start)  # (N, V)
        if sent_prefix is not None:
            lprobs = force_prefix(lprobs, step, sent_prefix.repeat_interleave(k, dim=0), row_start)
        vocab = lprobs.size(1)
        # Each sentence's best 2K candidates are among the best 2K of each of its beams (a beam's
        # score is one constant per row), so rank within rows first and never build all K*V sums.
        per_row = min(2 * k, vocab)
        row_lp, row_tok = lprobs.topk(per_row, dim=1)  # (N, per_row) best first
        cand = scores.view(bl, k, 1) + row_lp.view(bl, k, per_row)  # (Bl, K, per_row)
        c = min(2 * k, k * per_row)
        cand_scores, cand_pos = cand.view(bl, k * per_row).topk(c, dim=1)  # (Bl, C) best first
        cand_tok = row_tok.view(bl, k * per_row).gather(1, cand_pos)
        cand_rows = cand_pos // per_row + (torch.arange(bl, device=device) * k)[:, None]  # (Bl, C) live row
        cand_lp = row_lp.view(bl, k * per_row).gather(1, cand_pos)  # (Bl, C) the step log-prob of each candidate
        is_eos = cand_tok == EOS

        # EOS candidates within the best K finish, while the sentence has free slots.
        fin_mask = is_eos[:, :k] & (cand_scores[:, :k] > -math.inf)  # (Bl, K)
        slot = fin_count[sent][:, None] + fin_mask.long().cumsum(dim=1) - 1  # (Bl, K)
        fin_mask &= slot < k
        if bool(fin_mask.any()):
            b, j = fin_mask.nonzero(as_tuple=True)  # (M,) each
            sid, sl, r = sent[b], slot[b, j], cand_rows[b, j]
            fin_tok[sid, sl, :step] = tokens[r, 1:]
            fin_tok[sid, sl, step] = EOS
            fin_pos[sid, sl, :step] = pos[r]
            fin_pos[sid, sl, step] = cand_lp[b, j]
            fin_len[sid, sl] = step + 1
            if sent_start is None:
                fin_score[sid, sl] = normalize(cand_scores[b, j], step + 1, cfg.lenpen)
            else:  # the length counts the tokens after the prefix
                fin_score[sid, sl] = normalize_rows(cand_scores[b, j], step + 1 - sent_start[b], cfg.lenpen)
            if fin_attn is not None and attn is not None:
                fin_attn[sid, sl, : step + 1] = torch.cat([hist[r], attn[r, None]], dim=1)
            fin_count.index_add_(0, sid, torch.ones_like(sid))

        # The best K non-EOS candidates continue (there are at least K among the best 2K,
        # since each beam contributes at most one EOS candidate).
        order = torch.where(is_eos, ranks[:c] + 2 * k, ranks[:c])  # (Bl, C): non-EOS first, by score
        sel = order.topk(k, dim=1, largest=False).values % (2 * k)  # (Bl, K) candidate positions, best first
        new_scores = cand_scores.gather(1, sel)  # (Bl, K)
        new_rows = cand_rows.gather(1, sel)
        new_tok = cand_tok.gather(1, sel)
        new_lp = cand_lp.gather(1, sel)

        done = (fin_count[sent] >= k) | (sent_max <= step)  # rules 1 and 3
        if use_bound:  # rule 2: no live beam can beat the nbest-th finished hypothesis
            kth = fin_score[sent].topk(cfg.nbest, dim=1).values[:, -1]  # (Bl,)
            if sent_start is None:
                shortest = new_scores / float(step + 2) ** cfg.lenpen
                longest = new_scores / ((sent_max + 1).float() ** cfg.lenpen)[:, None]
            else:  # lengths after the prefix; a sentence still in its prefix ends with at least EOS
                shortest = new_scores / ((step + 2 - sent_start).clamp(min=1).float() ** cfg.lenpen)[:, None]
                longest = new_scores / ((sent_max + 1 - sent_start).float() ** cfg.lenpen)[:, None]
            bound = torch.maximum(shortest, longest).max(dim=1).values  # (Bl,)
            done |= kth >= bound
        if bool(done.all()):
            break
        keep = (~done).nonzero().squeeze(1)  # (Bl',)
        rows = new_rows.index_select(0, keep).view(-1)  # (N',) beam reordering and shrinking at once
        tokens = torch.cat([tokens.index_select(0, rows), new_tok.index_select(0, keep).view(-1, 1)], dim=1)
        pos = torch.cat([pos.index_select(0, rows), new_lp.index_select(0, keep).view(-1, 1)], dim=1)
        if hist is not None and attn is not None:
            hist = torch.cat([hist.index_select(0, rows), attn.index_select(0, rows)[:, None]], dim=1)
        scores = new_scores.index_select(0, keep)
        ens.select(rows, ens.sentence_rows(keep) if keep.numel() < bl else None)
        sent, sent_max = sent.index_select(0, keep), sent_max.index_select(0, keep)
        if sent_start is not None and sent_prefix is not None:
            sent_start, sent_prefix = sent_start.index_select(0, keep), sent_prefix.index_select(0, keep)

    n = bsz * k
    return collect(
        fin_tok.view(n, cap),
        fin_pos.view(n, cap),
        fin_len.view(n),
        fin_score.view(n),
        fin_attn.view(n, cap, -1) if fin_attn is not None else None,
        src_pad_mask,
        k,
        cfg.nbest,
        start,
    )
