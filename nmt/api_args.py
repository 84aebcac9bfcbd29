"""What the Python API classes share: their texts argument, their keyword options and `quantize=`.

Translator, LanguageModel and MaskFiller take a str or a list of str, and keyword options that
become a command's config (GenerateConfig, FillMaskConfig, ...), then go through that command's
check_*; these functions are the one way they do it, so all three refuse bad input alike.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from nmt.config import QUANTIZE, GenerateConfig
from nmt.errors import UserError

LN2 = math.log(2)

# GenerateConfig fields a call may set; the others say where text comes from and goes to (the CLI's business).
SEARCH_OPTIONS = (
    *("beam", "nbest", "lenpen", "max_len_a", "max_len_b", "min_len", "no_repeat_ngram_size", "unkpen"),
    *("sampling", "sampling_topk", "sampling_topp", "temperature", "seed"),
    *("max_tokens", "batch_size", "amp", "chunk_size", "workers"),
)
SCORE_OPTIONS = ("lenpen", "max_tokens", "batch_size")


def as_texts(value, name: str) -> tuple[list[str], bool]:
    """(sentences, given as one str); anything else than a str or a non-empty list of str is a UserError."""
    if isinstance(value, str):
        return [value], True
    if not isinstance(value, (list, tuple)):
        raise UserError(f"{name}: give a str or a list of str, got {type(value).__name__}")
    if not value:
        raise UserError(f"{name} is empty: give at least one sentence")
    for i, text in enumerate(value):
        if not isinstance(text, str):
            raise UserError(f"{name}[{i}] is a {type(text).__name__}, not a str")
    return list(value), False


def quantize_option(value: Optional[str], device: torch.device) -> str:
    """The quantize= of a load() on `device`: None is GenerateConfig's default (none); anything but one of
    QUANTIZE, or int8 off the CPU, is a UserError."""
    if value is None:
        return GenerateConfig().quantize
    if not isinstance(value, str) or value not in QUANTIZE:
        raise UserError(f"quantize={value!r}: expected one of {', '.join(QUANTIZE)}")
    if value != "none" and device.type != "cpu":
        raise UserError(f"quantize={value!r} runs on CPU, not {device.type}: load with device='cpu'")
    return value


def config_from_options(cls: type, allowed: Sequence[str], options: dict, base: dict):
    """A config of `cls` from the caller's keyword options (only `allowed` ones) over `base`."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UserError(f"unknown option {unknown[0]!r}; valid: {', '.join(allowed)}")
    defaults = cls(**base)
    for name, value in options.items():
        # Python callers are not parsed like flags: a value of another type than the default's is
        # named here, before check_* compares it with numbers (an int is a float; None an unset int).
        default = getattr(defaults, name)
        want = (int,) if default is None else (int, float) if type(default) is float else (type(default),)
        if not (value is None and default is None) and (
            not isinstance(value, want) or (isinstance(value, bool) and type(default) is not bool)
        ):
            raise UserError(f"option {name}={value!r}: expected {want[-1].__name__}, like the default {default!r}")
    return cls(**base, **options)
