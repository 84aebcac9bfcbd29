"""Config of the monolingual tasks' data flags (`nmt train --task language_modeling | masked_lm`), with its check."""

from __future__ import annotations

import math
from dataclasses import dataclass

from nmt.config.fields import opt, require

SAMPLE_BREAK_MODES = ("none", "eos", "complete")


@dataclass
class LanguageModelConfig:
    """How monolingual text becomes samples (nmt.data.monolingual); translation ignores these flags."""

    # fairseq's 512 suits GPUs; attention costs grow with the square of the length and a CPU batch
    # of --max-tokens 4096 holds 32 blocks of 128, which is also longer than most sentences.
    tokens_per_sample: int = opt(
        128, "Tokens per sample: a language-model block's targets, a masked-LM sentence (cut to it)."
    )
    sample_break_mode: str = opt(
        "none",
        "Language-model blocks: none (the token stream cut every N tokens) | eos (one sentence each) | "
        "complete (whole sentences packed up to N).",
    )
    mask_prob: float = opt(0.15, "Masked LM: share of the tokens (or words) of a sentence chosen; at least one.")
    mask_replace_prob: float = opt(0.8, "Masked LM: share of the chosen tokens replaced by <mask>.")
    mask_random_prob: float = opt(0.1, "Masked LM: share of the chosen tokens replaced by a random token.")
    mask_whole_words: bool = opt(False, "Masked LM: choose whole words (a ▁-piece and the pieces after it).")


def check_language_model(cfg: LanguageModelConfig) -> None:
    """Range checks of the monolingual tasks' flags; the message names the flag."""
    require(cfg.tokens_per_sample >= 2, f"--tokens-per-sample must be >= 2, got {cfg.tokens_per_sample}")
    require(
        cfg.sample_break_mode in SAMPLE_BREAK_MODES,
        f"--sample-break-mode {cfg.sample_break_mode!r} is not one of: {', '.join(SAMPLE_BREAK_MODES)}",
    )
    for key in ("mask_prob", "mask_replace_prob", "mask_random_prob"):
        value = getattr(cfg, key)
        require(
            math.isfinite(value) and 0 <= value <= 1,
            f"--{key.replace('_', '-')} must be a number in [0, 1], got {value}",
        )
    require(
        cfg.mask_replace_prob + cfg.mask_random_prob <= 1,
        f"--mask-replace-prob {cfg.mask_replace_prob} + --mask-random-prob {cfg.mask_random_prob} exceeds 1",
    )
