"""`nmt export`: a translation checkpoint as a model directory for another inference engine.

The flags are checked first, then that the format's package is installed, then the checkpoint is
loaded and refused unless the engine can run it exactly as nmt does. The directory is written
under a temporary name beside --out and renamed at the end (nmt.fileio.atomic_dir), so a failure
leaves --out as it was.
"""

from __future__ import annotations

from nmt.checkpoint import load_model
from nmt.config import ExportConfig, check_export
from nmt.errors import UserError
from nmt.export import ctranslate2 as ct2
from nmt.fileio import atomic_dir


def export(cfg: ExportConfig) -> str:
    """Write the checkpoint `cfg.path` to the directory `cfg.out` in `cfg.format`; returns cfg.out."""
    check_export(cfg)
    ct2.require_ctranslate2()  # the one format so far
    loaded = load_model(cfg.path, "cpu")
    ct2.check_exportable(loaded, cfg.path)
    try:
        with atomic_dir(cfg.out) as tmp:
            ct2.write(loaded, tmp, cfg.quantization, cfg.path)
    except OSError as e:
        raise UserError(f"--out {cfg.out}: cannot write: {e.strerror or e}") from None
    return cfg.out
