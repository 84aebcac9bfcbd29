"""Config of `nmt visualize-attn`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from nmt.config.fields import opt


@dataclass
class VisualizeConfig:
    """`nmt visualize-attn`: one sentence from --source, --input FILE or a data dir split."""

    path: str = opt(help="Checkpoint to visualize.")
    source: Optional[str] = opt(None, "Source sentence (raw text).")
    target: Optional[str] = opt(None, "Reference to teacher-force with --source (none: the model's translation).")
    input: Optional[str] = opt(None, "Raw text file, one sentence a line (with --index).")
    data: Optional[str] = opt(None, "Binarized data dir (with --gen-subset and --index).")
    gen_subset: str = opt("test", "Split of DATA_DIR.")
    index: int = opt(0, "0-based sentence index in --input or the split.")
    reference: bool = opt(True, "Teacher-force the split's reference when it has one (else translate).")
    beam: int = opt(5, "Beam of the model's own translation.")
    out: str = opt("attn", "Output directory.")
    format: str = opt("png", "Figure format: png | svg | pdf.")
    dpi: int = opt(100, "Resolution of png figures.")
    kinds: list[str] = opt(help="Comma list of enc_self, dec_self, cross (empty: all the model has).", factory=list)
    layers: list[int] = opt(help="1-based layers, e.g. 1,3-4 (empty: all).", factory=list)
    heads: list[int] = opt(help="1-based heads, e.g. 1-4 (empty: all).", factory=list)
    max_pieces: int = opt(60, "Cut longer sentences in the figures (statistics use every piece).")
    compare: list[str] = opt(help="Another checkpoint drawn side by side (repeatable).", factory=list)
    compare_init: bool = opt(False, "Add the same architecture with fresh random weights.")
    seed: int = opt(1, "Seed of the --compare-init weights.")
    max_sentences: int = opt(1, "Average the statistics over the first N sentences of --input or the split.")
    html: bool = opt(False, "Also write OUT/report.html (self-contained).")
    device: str = opt("auto", "auto | cpu | cuda.")
