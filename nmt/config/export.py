"""Config of `nmt export` (a trained translation model in another inference engine's format), with its check."""

from __future__ import annotations

import os
from dataclasses import dataclass

from nmt.config.fields import opt, require
from nmt.fileio import check_output

EXPORT_FORMATS = ("ctranslate2",)
# CTranslate2's weight types (ctranslate2.specs.model_spec.ACCEPTED_MODEL_TYPES), named here so that
# the flags are checked without importing ctranslate2; int8_X keeps int8 weights and computes in X.
QUANTIZATIONS = ("float32", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16")


@dataclass
class ExportConfig:
    """`nmt export`: a translation checkpoint written as a model directory another engine loads."""

    path: str = opt(help="Checkpoint of a Transformer translation model (nmt train).")
    out: str = opt(help="Output directory (created; a non-empty one needs --force).")
    format: str = opt("ctranslate2", "Format: ctranslate2 (a directory ctranslate2.Translator loads).")
    quantization: str = opt(
        "float32",
        "Weight type: float32 (as trained) | int8 | int8_float32 | int8_float16 | int8_bfloat16 | int16 "
        "| float16 | bfloat16.",
    )
    force: bool = opt(False, "Replace an existing non-empty --out.")


def check_export(cfg: ExportConfig) -> None:
    """Every `nmt export` setting that is impossible before the checkpoint is read is a UserError naming the flag."""
    require(cfg.format in EXPORT_FORMATS, f"--format {cfg.format!r}: valid: {', '.join(EXPORT_FORMATS)}")
    require(
        cfg.quantization in QUANTIZATIONS, f"--quantization {cfg.quantization!r}: valid: {', '.join(QUANTIZATIONS)}"
    )
    require(bool(cfg.path), "--path is required (a translation checkpoint)")
    require(":" not in cfg.path, "--path: export writes one checkpoint, not an ensemble")
    check_output(cfg.out, "--out", "dir")
    nonempty = os.path.isdir(cfg.out) and bool(os.listdir(cfg.out))
    require(cfg.force or not nonempty, f"--out {cfg.out} exists and is not empty; use --force to replace it")
    out = os.path.abspath(cfg.out)
    for what, inside in (("the checkpoint", os.path.abspath(cfg.path)), ("the current directory", os.getcwd())):
        # --force replaces --out whole: never with what it holds
        require(os.path.commonpath([out, inside]) != out, f"--out {cfg.out} holds {what}; choose another directory")
