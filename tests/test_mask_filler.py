"""MaskFiller: the Python API of a masked LM gives the results of `nmt fill-mask` and the attention
of `nmt visualize-attn`; wrong checkpoints and arguments are UserErrors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from helpers import cli
from matplotlib.figure import Figure
from mlmdata import trained_models

from nmt import FilledText, MaskFiller, plot_attention
from nmt.config import VisualizeConfig
from nmt.errors import UserError
from nmt.viz import attention as V

TEXTS = ["the cat <mask> on the mat .", "<mask> friend reads a <mask> book ."]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    return trained_models(tmp_path_factory)


@pytest.fixture(scope="module")
def mf(models) -> MaskFiller:
    return MaskFiller.load(models["mlm"], device="cpu")


def test_fill_equals_the_command(mf, models, monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, "fill-mask", "--path", models["mlm"], "--format", "json", *TEXTS)
    assert code == 0, err
    assert [r.to_json() for r in mf.fill(TEXTS)] == [json.loads(line) for line in out.splitlines()]
    code, out, _ = cli(monkeypatch, capsys, "fill-mask", "--path", models["mlm"], "--topk", "2", *TEXTS)
    assert "\n".join(r.to_text() for r in mf.fill(TEXTS, topk=2)) + "\n" == out
    single = mf.fill(TEXTS[0], topk=1)
    assert isinstance(single, FilledText) and single.masks[0][0].token == "sat"
    assert [len(m) for m in mf.fill(TEXTS[1], topk=4).masks] == [4, 4]


def test_attention_is_visualize_attn_capture(mf, models, tmp_path):
    text = TEXTS[0]
    attn = mf.attention(text)
    assert list(attn.weights) == ["enc_self"] and attn.source == text and attn.label == "checkpoint_last"
    assert attn.src_pieces == ["▁the", "▁cat", "<mask>", "▁on", "▁the", "▁mat", "▁.", "</s>"]
    w = attn.weights["enc_self"][0]  # (H, S+1, S+1)
    assert w.shape == (2, 8, 8) and np.allclose(w.sum(axis=-1), 1, atol=1e-5)
    res = V.run(VisualizeConfig(path=models["mlm"], source=text, out=str(tmp_path), dpi=30, device="cpu"))
    assert json.dumps(attn.stats()) == json.dumps(res.rows)  # NaN (no diagonal in self-attention) included
    assert res.figures[0].axes2d.xlabels == attn.src_pieces
    fig = plot_attention(attn, kind="enc_self", layer=1)
    assert isinstance(fig, Figure) and fig._repr_png_()[:4] == b"\x89PNG"
    with pytest.raises(UserError, match="this model has no cross attention; it has enc_self"):
        plot_attention(attn, kind="cross")


def test_wrong_checkpoints_and_arguments_are_user_errors(mf, models, tiny_model):
    with pytest.raises(UserError, match="is a language_modeling model .* fill-mask needs a masked LM"):
        MaskFiller.load(models["lm"], device="cpu")
    with pytest.raises(UserError, match="is a translation model"):
        MaskFiller.load(tiny_model, device="cpu")
    with pytest.raises(UserError, match=r"^texts\[1\] has no <mask>: 'no mask'$"):
        mf.fill(["a <mask>", "no mask"])
    with pytest.raises(UserError, match="unknown option 'beam'; valid: topk, batch_size"):
        mf.fill("a <mask>", beam=2)
    with pytest.raises(UserError, match="option topk='3': expected int"):
        mf.fill("a <mask>", topk="3")
    with pytest.raises(UserError, match="--topk must be at least 1"):
        mf.fill("a <mask>", topk=0)
    with pytest.raises(UserError, match="texts is empty"):
        mf.fill([])
    with pytest.raises(UserError, match="attention: text must be a str"):
        mf.attention(["a"])


def test_results_are_plain_dataclasses(mf):
    result = mf.fill(TEXTS[0], topk=1)
    assert dataclasses.asdict(result) == result.to_json()
