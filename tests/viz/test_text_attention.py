"""visualize-attn of a language model (causal dec_self of BOS + the text) and of a masked LM
(enc_self of pieces + EOS): files, causal maps, statistics by hand, the Python API's capture, refusals.

Shape legend: H heads, T text length (+ 1 for BOS or EOS).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import cli
from mlmdata import trained_models

from nmt.checkpoint import load_model
from nmt.config import VisualizeConfig
from nmt.errors import UserError
from nmt.viz import attention as V
from nmt.viz.capture import lm_attention, mlm_attention, text_attention
from nmt.viz.plot import Attention
from nmt.viz.stats import head_stats, valid_mask

TEXT = "the dog ran to the park ."


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    return trained_models(tmp_path_factory)


def _files(path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def test_language_model_files_and_report(models, tmp_path, monkeypatch, capsys):
    out = tmp_path / "lm"
    code, stdout, err = cli(
        monkeypatch, capsys, "visualize-attn", "--path", models["lm"], "--source", TEXT, "--out", str(out),
        "--compare-init", "--html", "--dpi", "30", "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    maps = [f"{p}dec_self_L{n}{m}.png" for n in (1, 2) for p, m in (("", ""), ("", "_mean"), ("compare_", ""))]
    assert _files(out) == sorted(maps + ["report.html", "stats.csv", "stats.json"])
    assert stdout.splitlines()[0] == f"text (teacher-forced: <s> + pieces): {TEXT}"
    rows = json.loads((out / "stats.json").read_text())["rows"]
    assert {r["kind"] for r in rows} == {"dec_self"} and len(rows) == 2 * 2 * 2  # init + model, 2 layers, 2 heads
    assert all(r["next"] is None and r["diag_agree"] is None for r in rows)  # causal: the next key is never seen
    assert all(r["offset"] == pytest.approx(-r["distance"], abs=2e-6) for r in rows)  # keys are never to the right
    page = (out / "report.html").read_text()
    assert f"<p><b>text</b> (teacher-forced: &lt;s&gt; + pieces): {TEXT}</p>" in page and "<b>source</b>" not in page


def test_masked_lm_files(models, tmp_path, monkeypatch, capsys):
    code, stdout, err = cli(
        monkeypatch, capsys, "visualize-attn", "--path", models["mlm"], "--source", "the <mask> ran to the park .",
        "--out", str(tmp_path), "--dpi", "30", "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    assert _files(tmp_path) == ["enc_self_L1.png", "enc_self_L1_mean.png", "stats.csv", "stats.json"]
    assert stdout.splitlines()[0] == "text: the <mask> ran to the park ."


def test_causal_maps_are_zero_above_the_diagonal(models):
    attn = lm_attention(load_model(models["lm"]), TEXT)
    assert list(attn.weights) == ["dec_self"] and attn.target == TEXT and attn.target_origin == "text"
    assert attn.tgt_in_pieces == ["<s>", "▁the", "▁dog", "▁ran", "▁to", "▁the", "▁park", "▁."]
    for w in attn.weights["dec_self"]:  # (H, T+1, T+1)
        assert w.shape == (2, 8, 8)
        assert np.all(np.triu(w, k=1) == 0) and np.allclose(w.sum(axis=-1), 1, atol=1e-5)
        assert np.all(w[:, 0, 0] == 1)  # BOS sees itself only


def test_causal_statistics_by_hand():
    """A fixed map over <s> a b: row 0 (one visible key) is left out, rows 1 and 2 are averaged."""
    w = np.array([[1.0, 0.0, 0.0], [0.25, 0.75, 0.0], [0.5, 0.3, 0.2]])
    stats = head_stats(w, valid_mask("dec_self", 3, 3), "dec_self")
    h1 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / math.log(2)
    h2 = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2)) / math.log(3)
    want = {
        "entropy": (h1 + h2) / 2,  # normalized by log(visible keys): 2 on row 1, 3 on row 2
        "max_weight": (0.75 + 0.5) / 2,
        "distance": (0.25 * 1 + (0.5 * 2 + 0.3 * 1)) / 2,  # how far back a row looks
        "offset": -(0.25 * 1 + (0.5 * 2 + 0.3 * 1)) / 2,  # always -distance on a causal map
        "eos": (0.25 + 0.5) / 2,  # weight on BOS, the sink
        "self": (0.75 + 0.2) / 2,
        "prev": (0.25 + 0.3) / 2,
    }
    for name, value in want.items():
        assert stats[name][0] == pytest.approx(value, abs=1e-12), name
    assert math.isnan(stats["next"][0]) and math.isnan(stats["diag_agree"][0])
    attn = Attention("", "<s> a b", "text", [], ["<s>", "a", "b"], ["a", "b", "</s>"], {"dec_self": [w[None]]})
    [row] = attn.stats()
    assert row["label"] == "focused" and row["prev"] == pytest.approx(want["prev"], abs=1e-12)


@pytest.mark.parametrize("which", ["lm", "mlm"])
def test_api_attention_is_visualize_attn_capture(which, models, tmp_path):
    loaded = load_model(models[which])
    capture = lm_attention if which == "lm" else mlm_attention
    attn = capture(loaded, TEXT, label=V._stem(models[which]))
    res = V.run(VisualizeConfig(path=models[which], source=TEXT, out=str(tmp_path), dpi=30, device="cpu"))
    assert json.dumps(attn.stats()) == json.dumps(res.rows)
    pieces = attn.tgt_in_pieces if which == "lm" else attn.src_pieces
    assert res.figures[0].axes2d.xlabels == pieces == res.figures[0].axes2d.ylabels


def test_texts_of_a_file_and_of_a_monolingual_data_dir(models, tmp_path):
    lines = tmp_path / "in.txt"
    lines.write_text("the cat sat on the mat .\n" + TEXT + "\n", encoding="utf-8")
    base = dict(path=models["lm"], dpi=30, device="cpu", index=1, max_sentences=2)
    from_file = V.run(VisualizeConfig(input=str(lines), out=str(tmp_path / "a"), **base))
    assert from_file.sentence.tgt_text == TEXT and from_file.n_sentences == 2
    # the valid split holds the training sentences: sentence 1 is TEXT
    from_dir = V.run(VisualizeConfig(data=models["data"], gen_subset="valid", out=str(tmp_path / "b"), **base))
    assert from_dir.sentence.tgt_text == TEXT and json.dumps(from_dir.rows) == json.dumps(from_file.rows)


@pytest.mark.parametrize(
    "which, args, message",
    [
        (
            "lm",
            ["--target", "x"],
            "error: --target: a language_modeling model reads one text; give it with --source alone",
        ),
        ("mlm", ["--target", "x"], "error: --target: a masked_lm model reads one text; give it with --source alone"),
        ("lm", ["--kinds", "cross"], "error: architecture transformer_lm_tiny has no cross attention; it has dec_self"),
        ("mlm", ["--kinds", "dec_self"], "error: architecture mlm_tiny has no dec_self attention; it has enc_self"),
        ("lm", ["--layers", "3"], "error: --layers 3 is out of range: architecture transformer_lm_tiny has 2"),
    ],
)
def test_refused_cases_are_one_line(which, args, message, models, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    code, stdout, err = cli(
        monkeypatch, capsys, "visualize-attn", "--path", models[which], "--source", TEXT, "--out", str(out), *args
    )
    assert (code, stdout, err) == (2, "", message + "\n")
    assert not out.exists()


def test_the_python_captures_refuse_other_families(models, tiny_model):
    with pytest.raises(UserError, match="architecture mlm_tiny is not a language model"):
        lm_attention(load_model(models["mlm"]), TEXT)
    with pytest.raises(UserError, match="architecture transformer_lm_tiny is not a masked language model"):
        mlm_attention(load_model(models["lm"]), TEXT)
    with pytest.raises(UserError, match="is a translation model: give it a source and a target"):
        text_attention(load_model(tiny_model), TEXT)
    with pytest.raises(UserError, match="text has 3000 pieces; the model takes at most"):
        lm_attention(load_model(models["lm"]), " ".join(["the mat"] * 1500))
