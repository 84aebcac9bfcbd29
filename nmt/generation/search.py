"""One entry point for every search: greedy, sampling (nmt.generation.sampling) or beam (nmt.generation.beam)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from nmt.config import GenerateConfig
from nmt.generation.beam import beam_search
from nmt.generation.decoding import Hypothesis
from nmt.generation.sampling import independent_search


def translate_batch(
    models: list[nn.Module],
    src: Tensor,
    src_pad_mask: Tensor,
    cfg: GenerateConfig,
    need_attn: bool = False,
    prefix: Optional[Tensor] = None,
) -> list[list[Hypothesis]]:
    """Translate a batch: src (B, S) long (pieces + EOS, right-padded), src_pad_mask (B, S) True at padding.

    Returns, per sentence, up to `cfg.nbest` hypotheses, best first. Models must be in eval mode
    and on src's device; several models form an ensemble. prefix (B, P) right-padded with PAD:
    tokens each output is forced to start with (a language model's prompt), left out of the
    hypotheses (nmt.generation.decoding)."""
    with torch.inference_mode():
        if cfg.sampling:
            return independent_search(models, src, src_pad_mask, cfg, cfg.beam, need_attn, prefix)
        if cfg.beam == 1:
            return independent_search(models, src, src_pad_mask, cfg, 1, need_attn, prefix)
        return beam_search(models, src, src_pad_mask, cfg, need_attn, prefix)
