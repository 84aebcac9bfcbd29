"""The attention of one sentence as a value, and its heatmaps as matplotlib Figures (for notebooks).

Shape legend: H heads, S source length, T target length.

`Attention` holds what `nmt visualize-attn` captures for one sentence (nmt.viz.capture): the
weights of every kind, layer and head, with the pieces on each axis. `plot_attention` draws one
layer of it with the command's own figures (nmt.viz.figures: `head_panels`, `mean_panel`,
`PanelFigure`), so a notebook shows exactly the {kind}_L{n} / {kind}_L{n}_mean files of the
command. A returned Figure has its own Agg canvas: no pyplot state and no `matplotlib.use`; it
carries `_repr_png_`, so Jupyter displays it inline as the value of a cell, with or without
`%matplotlib inline`. `fig.savefig(path)` writes it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
from matplotlib.figure import Figure as MplFigure

from nmt.config import VisualizeConfig
from nmt.errors import UserError
from nmt.viz.figures import axes_for, head_panels, mean_panel
from nmt.viz.stats import KINDS, stat_rows


@dataclass
class Attention:
    """Every attention map of one sentence pair, as `nmt visualize-attn` captures it.

    weights: {kind: [(H, T_q, T_k) float32 per layer]} for the kinds the model has, of
    "enc_self" (S+1, S+1), "dec_self" (T+1, T+1) and "cross" (T+1, S+1); layers and heads are
    0-based in the lists, 1-based in figures and statistics.
    """

    source: str
    target: str
    target_origin: str  # "reference" (teacher-forced) | "translation (beam K)" (the model's own)
    src_pieces: list[str]  # source pieces + </s>: keys of enc_self and cross
    tgt_in_pieces: list[str]  # <s> + target pieces: queries and keys of dec_self
    tgt_pieces: list[str]  # target pieces + </s>: queries of cross (row i predicts piece i)
    weights: dict[str, list[np.ndarray]]
    label: str = "model"  # the model's name in titles and statistics (its checkpoint's file stem)

    def stats(self) -> list[dict]:
        """Per-head statistics and labels of every kind, layer and head (nmt.viz.stats.stat_rows:
        the rows of visualize-attn's stats.csv for this sentence)."""
        selection = [(k, list(range(len(ls))), list(range(ls[0].shape[0]))) for k, ls in self.weights.items()]
        return stat_rows(self.label, [self.weights], selection)[0]


def _check(attn: Attention, kind: str, layer: Optional[int], head: Union[int, str, None]) -> int:
    """The 0-based layer asked for (None: the last), or a UserError naming the bad argument."""
    if kind not in KINDS:
        raise UserError(f"kind: unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    if kind not in attn.weights:
        raise UserError(f"kind: this model has no {kind} attention; it has {', '.join(attn.weights)}")
    n_layers = len(attn.weights[kind])
    if layer is None:
        layer = n_layers
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 1 <= layer <= n_layers:
        raise UserError(f"layer {layer!r} is out of range: {kind} has layers 1 to {n_layers} (1-based)")
    n_heads = attn.weights[kind][layer - 1].shape[0]
    if head is not None and head != "mean":
        if isinstance(head, bool) or not isinstance(head, (int, np.integer)) or not 1 <= head <= n_heads:
            raise UserError(f"head {head!r} is out of range: give 1 to {n_heads} (1-based), 'mean' or None (all)")
    return int(layer) - 1


def plot_attention(
    attn: Attention,
    kind: str = "cross",
    layer: Optional[int] = None,
    head: Union[int, str, None] = None,
    max_pieces: Optional[int] = None,
) -> MplFigure:
    """One layer of one kind of attention as a matplotlib Figure.

    kind: "enc_self", "dec_self" or "cross"; layer: 1-based (None: the last layer); head: None for
    every head of the layer in a grid with one colour scale (visualize-attn's {kind}_L{n} figure),
    "mean" for the head average ({kind}_L{n}_mean), or a 1-based head for that head alone;
    max_pieces: cut longer sentences (None: visualize-attn's --max-pieces default).
    Bad arguments raise UserError naming them.
    """
    index = _check(attn, kind, layer, head)
    if max_pieces is None:
        max_pieces = VisualizeConfig(path="").max_pieces
    if max_pieces < 2:
        raise UserError(f"max_pieces must be at least 2, got {max_pieces}")
    weights = attn.weights[kind][index]  # (H, T, S)
    axes2d = axes_for(kind, attn.src_pieces, attn.tgt_in_pieces, attn.tgt_pieces)
    if head == "mean":
        panels = mean_panel(kind, index + 1, weights, axes2d, max_pieces, attn.label)
    else:
        heads = range(weights.shape[0]) if head is None else [int(head) - 1]
        panels = head_panels(kind, index + 1, weights, list(heads), axes2d, max_pieces, attn.label)
    return _displayable(panels.figure().fig)


def _displayable(fig: MplFigure) -> MplFigure:
    """The figure, shown inline by Jupyter as the value of a cell even before any `%matplotlib`.

    IPython shows a Figure as a picture only once pyplot has activated an inline backend, which
    these figures never do (they keep no pyplot state); `_repr_png_` is the display protocol
    IPython asks any object for, so this figure carries its own.
    """
    fig._repr_png_ = lambda: _png(fig)
    return fig


def _png(fig: MplFigure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
