"""Config of `nmt visualize-attn`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from nmt.config.fields import opt, require, require_finite
from nmt.fileio import check_output

FIGURE_FORMATS = ("png", "svg", "pdf")


@dataclass
class VisualizeConfig:
    """`nmt visualize-attn`: one sentence from --source, --input FILE or a data dir split."""

    path: str = opt(help="Checkpoint to visualize.")
    source: Optional[str] = opt(None, "Source sentence (raw text); the text of a language model or masked LM.")
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


def check_visualize(cfg: VisualizeConfig) -> None:
    """The checks of `nmt visualize-attn`'s flags that need no model (the rest need the checkpoint)."""
    given = [n for n, v in (("--source", cfg.source), ("--input", cfg.input), ("DATA_DIR", cfg.data)) if v is not None]
    got = f" (got {', '.join(given)})" if given else ""
    require(len(given) == 1, f"give exactly one of --source TEXT, --input FILE or DATA_DIR{got}")
    require(cfg.target is None or cfg.source is not None, "--target goes with --source")
    require(
        cfg.format in FIGURE_FORMATS, f"--format {cfg.format!r} is not supported; valid: {', '.join(FIGURE_FORMATS)}"
    )
    require(
        cfg.max_sentences >= 1 and cfg.beam >= 1 and cfg.max_pieces >= 2,
        "--max-sentences and --beam must be at least 1, --max-pieces at least 2",
    )
    require(1 <= cfg.dpi <= 1200, f"--dpi must be between 1 and 1200, got {cfg.dpi}")
    require_finite(cfg)
    check_output(cfg.out, "--out", "dir")
