"""plot_attention: the figure of one layer (heads, head mean, one head), its labels, and bad arguments.

Shape legend: H heads, S source length, T target length.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from nmt.errors import UserError
from nmt.viz import Attention, plot_attention

SRC = ["▁a", "▁red", "▁car", "</s>"]  # S = 4
TGT_IN = ["<s>", "▁une", "▁voiture"]  # T = 3
TGT = ["▁une", "▁voiture", "</s>"]


def weights(heads: int, t: int, s: int, seed: int) -> np.ndarray:
    """(H, T, S) rows summing to 1."""
    w = np.random.default_rng(seed).random((heads, t, s)).astype(np.float32)
    return w / w.sum(axis=-1, keepdims=True)


def attention(heads: int = 3, kinds=("enc_self", "dec_self", "cross")) -> Attention:
    shapes = {"enc_self": (4, 4), "dec_self": (3, 3), "cross": (3, 4)}
    maps = {k: [weights(heads, *shapes[k], seed) for seed in (1, 2)] for k in kinds}  # two layers
    return Attention("a red car", "une voiture", "reference", SRC, TGT_IN, TGT, maps, label="toy")


def panels(fig: Figure) -> list:
    """The visible heatmap axes (the colour bar has no image title)."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.images and ax.texts]


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_every_head_of_a_layer():
    attn = attention(heads=3)
    fig = plot_attention(attn, kind="cross", layer=2)
    assert isinstance(fig, Figure)
    assert fig._repr_png_().startswith(b"\x89PNG\r\n\x1a\n")  # what Jupyter shows as the cell's value
    shown = panels(fig)
    assert len(shown) == 3 and len(fig.axes) == 3 + 1  # three heads (grid 1 x 3) and the colour bar
    assert [texts(ax) for ax in shown] == [["head 1"], ["head 2"], ["head 3"]]
    assert fig._suptitle.get_text() == "cross-attention, layer 2 (toy)"
    for h, ax in enumerate(shown):
        assert np.array_equal(ax.images[0].get_array(), attn.weights["cross"][1][h])
    assert [t.get_text() for t in shown[0].get_yticklabels()] == TGT
    assert [t.get_text() for t in shown[-1].get_xticklabels()] == SRC
    names = [t.get_text() for t in fig.texts]
    assert "source" in names and "target (predicted piece)" in names


def test_four_heads_make_a_square_grid_and_the_default_layer_is_the_last():
    attn = attention(heads=4)
    fig = plot_attention(attn, kind="dec_self")
    assert len(panels(fig)) == 4 and len(fig.axes) == 5
    assert fig._suptitle.get_text() == "decoder self-attention (masked), layer 2 (toy)"
    positions = sorted({round(ax.get_position().y0, 3) for ax in panels(fig)})
    assert len(positions) == 2  # 2 x 2
    assert [t.get_text() for t in panels(fig)[0].get_yticklabels()] == TGT_IN


def test_head_mean_and_one_head():
    attn = attention(heads=3)
    mean = plot_attention(attn, kind="enc_self", layer=1, head="mean")
    (ax,) = panels(mean)
    assert texts(ax) == ["mean of 3 heads"]
    assert np.allclose(ax.images[0].get_array(), attn.weights["enc_self"][0].mean(axis=0))
    one = plot_attention(attn, kind="enc_self", layer=1, head=2)
    (ax,) = panels(one)
    assert texts(ax) == ["head 2"]
    assert np.array_equal(ax.images[0].get_array(), attn.weights["enc_self"][0][1])


def test_long_sentences_are_cut():
    attn = attention(heads=2)
    fig = plot_attention(attn, kind="cross", layer=1, max_pieces=2)
    assert panels(fig)[0].images[0].get_array().shape == (2, 2)
    assert fig._suptitle.get_text().endswith("(first 2 of 4 key pieces, first 2 of 3 query pieces shown)")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "self"}, "kind: unknown kind 'self'; valid: enc_self, dec_self, cross"),
        ({"kind": "enc_self"}, "kind: this model has no enc_self attention; it has dec_self, cross"),
        ({"layer": 3}, "layer 3 is out of range: cross has layers 1 to 2 (1-based)"),
        ({"layer": 0}, "layer 0 is out of range"),
        ({"layer": "1"}, "layer '1' is out of range"),
        ({"head": 4}, "head 4 is out of range: give 1 to 3 (1-based), 'mean' or None (all)"),
        ({"head": "max"}, "head 'max' is out of range"),
        ({"max_pieces": 1}, "max_pieces must be at least 2, got 1"),
    ],
)
def test_bad_arguments_are_user_errors_naming_them(kwargs, message):
    with pytest.raises(UserError) as e:
        plot_attention(attention(heads=3, kinds=("dec_self", "cross")), **{"kind": "cross", **kwargs})
    assert str(e.value) == message or message in str(e.value)


def test_stats_rows_cover_every_head():
    rows = attention(heads=2).stats()
    assert [(r["kind"], r["layer"], r["head"]) for r in rows] == [
        (k, layer, h) for k in ("enc_self", "dec_self", "cross") for layer in (1, 2) for h in (1, 2)
    ]
    assert all(r["model"] == "toy" and r["sentences"] == 1 for r in rows)
