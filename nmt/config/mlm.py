"""Config of `nmt fill-mask` (a masked language model fills in `<mask>`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from nmt.config.fields import opt, require

FILL_MASK_FORMATS = ("text", "json")


@dataclass
class FillMaskConfig:
    """`nmt fill-mask`: texts with `<mask>` from the arguments or --input, the top K fillers of each mask."""

    path: str = opt(help="Checkpoint of a masked language model (nmt train --task masked_lm).")
    texts: list[str] = opt(help="Texts holding <mask> (or --input).", factory=list)
    input: Optional[str] = opt(None, "Read the texts from this file, one a line ('-': stdin).")
    topk: int = opt(5, "Fillers shown per <mask>, most probable first.")
    format: str = opt("text", "Output: text (one line per mask) | json (one object per text).")
    batch_size: int = opt(32, "Texts per forward pass.")
    device: str = opt("auto", "auto | cpu | cuda.")


def check_fill_mask(cfg: FillMaskConfig) -> None:
    """The checks of `nmt fill-mask`'s flags that need no model (the rest need the checkpoint)."""
    given = (["TEXT"] if cfg.texts else []) + (["--input"] if cfg.input is not None else [])
    require(len(given) == 1, "give texts as arguments or --input FILE, not both" if given else "give TEXT or --input")
    require(cfg.topk >= 1, f"--topk must be at least 1, got {cfg.topk}")
    require(cfg.batch_size >= 1, f"--batch-size must be at least 1, got {cfg.batch_size}")
    require(cfg.format in FILL_MASK_FORMATS, f"--format {cfg.format!r}: valid: {', '.join(FILL_MASK_FORMATS)}")
