"""`nmt export`."""

from __future__ import annotations

from nmt.cli.app import app, option
from nmt.config import ExportConfig
from nmt.export.run import export as run

X = ExportConfig


@app.command("export")
def export(
    path: str = option(X, "path", default=...),
    out: str = option(X, "out", default=...),
    format: str = option(X, "format", "--format"),
    quantization: str = option(X, "quantization"),
    force: bool = option(X, "force"),
) -> None:
    """Write a Transformer translation checkpoint as a CTranslate2 model directory.

    The directory holds model.bin, config.json, the vocabularies, the SentencePiece models
    (source.spm, target.spm) and a README with the lines that translate with ctranslate2.Translator.
    LSTM and language-model checkpoints are refused (docs/deploy.md).
    """
    cfg = ExportConfig(**locals())
    print(f"wrote {run(cfg)} ({cfg.format}, {cfg.quantization} weights)")
