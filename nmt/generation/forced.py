"""Forced decoding: the log-probability a model (or an ensemble) gives to a given translation.

Shape legend: B sentences, S source length, T target length (pieces + EOS), V target vocabulary.

One teacher-forced pass per model: `encode(src)`, then `decode(tgt_in)` over the whole target at
once, where tgt_in = BOS + pieces. The log-prob of target token t is log_softmax(logits)[t] in
float32; an ensemble averages probabilities (logsumexp over models - log n), exactly as search's
step does (nmt.generation.decoding). Search's positional scores are these same numbers, computed
step by step from the cached decoder state, unless a search rule changed the chosen token's
log-prob (--unkpen on <unk>, --temperature other than 1): so scoring a hypothesis of search gives
back its positional scores, up to float rounding of the different batch shapes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nmt.generation.decoding import PAD


def forced_lprobs(
    models: list[nn.Module], src: Tensor, src_pad_mask: Tensor, tgt_in: Tensor, tgt_out: Tensor
) -> Tensor:
    """(B, T) float32 log-probs of tgt_out's tokens given the source and the previous gold tokens; 0 at padding.

    src (B, S) pieces + EOS, src_pad_mask (B, S) True at padding, tgt_in (B, T) BOS + pieces,
    tgt_out (B, T) pieces + EOS, both right-padded with PAD. Models must be in eval mode on src's device.
    """
    per_model = []
    with torch.inference_mode():
        for model in models:
            memory, _ = model.encode(src, src_pad_mask)
            logits, _, _ = model.decode(tgt_in, memory, src_pad_mask, None)  # (B, T, V)
            lprobs = torch.log_softmax(logits.float(), dim=-1)
            per_model.append(lprobs.gather(2, tgt_out.unsqueeze(2)).squeeze(2))  # (B, T)
        if len(per_model) == 1:
            out = per_model[0]
        else:
            # The gathered token's ensemble log-prob: logsumexp over models of that token's log-probs.
            out = torch.logsumexp(torch.stack(per_model), dim=0) - math.log(len(models))
        return out.masked_fill(tgt_out.eq(PAD), 0.0)


def sequence_scores(lprobs: Tensor, tgt_out: Tensor, lenpen: float) -> tuple[Tensor, Tensor]:
    """Per sentence (sum of log-probs (B,), length-normalised score (B,)) from lprobs (B, T).

    The length counts EOS and the normalisation is search's: sum / length**lenpen."""
    lengths = tgt_out.ne(PAD).sum(dim=1).double()  # (B,)
    total = lprobs.double().sum(dim=1)
    return total, total / lengths.pow(lenpen)
