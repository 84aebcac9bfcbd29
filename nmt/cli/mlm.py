"""`nmt fill-mask`."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from nmt.cli.app import app, option
from nmt.config import FillMaskConfig
from nmt.generation.fill_mask import run

F = FillMaskConfig


@app.command("fill-mask")
def fill_mask(
    texts: Optional[List[str]] = typer.Argument(
        None, metavar="TEXT", help=F.__dataclass_fields__["texts"].metadata["help"]
    ),
    path: str = option(F, "path", default=...),
    input: Optional[str] = option(F, "input", "--input"),
    topk: int = option(F, "topk"),
    format: str = option(F, "format", "--format"),
    batch_size: int = option(F, "batch_size"),
    device: str = option(F, "device"),
) -> None:
    """A masked LM's most probable fillers of each <mask> in a text.

    Every mask of a text is filled independently, from one forward pass.
    """
    values = dict(locals())
    values["texts"] = list(texts or [])
    results = run(FillMaskConfig(**values))
    for result in results:
        print(json.dumps(result.to_json(), ensure_ascii=False) if format == "json" else result.to_text(), flush=True)
