"""`nmt visualize-attn`."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer
from rich.console import Console

from nmt.cli.app import app, option
from nmt.config import VisualizeConfig
from nmt.viz.attention import parse_int_list, run
from nmt.viz.html import sentence_lines
from nmt.viz.tables import stats_table

V = VisualizeConfig


@app.command("visualize-attn")
def visualize_attn(
    data: Optional[str] = typer.Argument(
        None, metavar="DATA_DIR", help=V.__dataclass_fields__["data"].metadata["help"]
    ),
    path: str = option(V, "path"),
    source: Optional[str] = option(V, "source"),
    target: Optional[str] = option(V, "target"),
    input: Optional[str] = option(V, "input", "--input"),
    index: int = option(V, "index"),
    gen_subset: str = option(V, "gen_subset"),
    reference: bool = option(V, "reference", "--reference/--no-reference"),
    beam: int = option(V, "beam"),
    out: str = option(V, "out"),
    format: str = option(V, "format", "--format"),
    dpi: int = option(V, "dpi"),
    kinds: str = option(V, "kinds", default=""),
    layers: str = option(V, "layers", default=""),
    heads: str = option(V, "heads", default=""),
    max_pieces: int = option(V, "max_pieces"),
    compare: Optional[List[str]] = option(V, "compare", default=None),
    compare_init: bool = option(V, "compare_init"),
    seed: int = option(V, "seed"),
    max_sentences: int = option(V, "max_sentences"),
    html: bool = option(V, "html"),
    device: str = option(V, "device"),
) -> None:
    """Export attention heatmaps per kind, layer and head; compare checkpoints.

    Files in OUT: {kind}_L{n}.{fmt} (every head), {kind}_L{n}_mean.{fmt}
    (head average), compare_{kind}_L{n}.{fmt} (--compare / --compare-init),
    stats.csv, stats.json, report.html (--html).
    """
    values = dict(locals())
    values["compare"] = list(compare or [])
    values["kinds"] = [k for k in kinds.replace(" ", "").split(",") if k]
    values["layers"] = parse_int_list(layers, "--layers")
    values["heads"] = parse_int_list(heads, "--heads")
    result = run(VisualizeConfig(**values))
    console = Console(width=None if sys.stdout.isatty() else 160)  # files and pipes get the whole table
    s = result.sentence
    console.print(
        "\n".join(f"{what}{' ' * bool(note)}{note}: {text}" for what, note, text in sentence_lines(s)), markup=False
    )
    console.print(stats_table(result.rows, f"attention heads over {result.n_sentences} sentence(s)"))
    for line in result.summaries:
        console.print(line, markup=False)
    print(f"wrote {len(result.files)} files to {result.out}", file=sys.stderr)
