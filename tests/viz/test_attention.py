"""visualize-attn: figures, statistics, HTML report, comparison, the trainer's picture, CLI errors.

Shape legend: H heads, S source length, T target length.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import shrink

import nmt.models as M
from nmt import cli
from nmt.checkpoint import load_model, save_model
from nmt.config import VisualizeConfig
from nmt.data.dataset import load_split, read_meta
from nmt.data.tokenizer import SPECIAL_PIECES, WordTokenizer, read_blobs
from nmt.errors import UserError
from nmt.registry import ARCHS
from nmt.viz import attention as V
from nmt.viz import capture as C
from nmt.viz import stats as A
from nmt.viz.stats import STAT_NAMES

WORDS = "a the cat dog sees runs red big small house le la chat chien voit court rouge grand petit maison".split()
SOURCE, TARGET = "the big cat sees a red house", "le grand chat voit la maison rouge"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def word_meta() -> tuple[dict, dict[str, bytes]]:
    """A joined word vocabulary (no SentencePiece training needed) as data meta + tokenizer blobs."""
    tok = WordTokenizer(list(SPECIAL_PIECES) + WORDS)
    meta = {
        "format_version": 1,
        "source_lang": "en",
        "target_lang": "fr",
        "joined_dictionary": True,
        "vocab_size": {"en": tok.vocab_size, "fr": tok.vocab_size},
        "tokenizer": {"type": "word", "files": {"en": "dict.txt", "fr": "dict.txt"}},
        "splits": {},
    }
    return meta, {"dict.txt": tok.to_bytes()}


def save_tiny(path: Path, arch: str = "transformer_tiny", seed: int = 0, meta=None, blobs=None) -> str:
    if meta is None:
        meta, blobs = word_meta()
    cfg = shrink(ARCHS[arch]())
    vocab = meta["vocab_size"]
    torch.manual_seed(seed)
    model = M.build_model(cfg, vocab[meta["source_lang"]], vocab[meta["target_lang"]], meta["joined_dictionary"])
    save_model(str(path), model, cfg, arch, meta, blobs)
    return str(path)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("ckpt")
    return {
        "a": save_tiny(d / "epoch1.pt", seed=0),
        "b": save_tiny(d / "epoch10.pt", seed=1),
        "init7": save_tiny(d / "init7.pt", seed=7),
        "noattn": save_tiny(d / "lstm.pt", arch="lstm_seq2seq"),
    }


def config(path: str, out: Path, **kw) -> VisualizeConfig:
    kw.setdefault("source", SOURCE)
    kw.setdefault("target", TARGET)
    return VisualizeConfig(path=path, out=str(out), dpi=30, device="cpu", **kw)


# ----------------------------------------------------------------------------- figures + stats
def test_figures_stats_and_html(ckpts, tmp_path):
    res = V.run(config(ckpts["a"], tmp_path, html=True))
    names = sorted(p.name for p in tmp_path.iterdir())
    kinds = ("enc_self", "dec_self", "cross")
    expected = sorted(f"{k}_L{n}{m}.png" for k in kinds for n in (1, 2) for m in ("", "_mean"))
    assert names == sorted(expected + ["stats.csv", "stats.json", "report.html"])
    for name in expected:
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
    # statistics: 3 kinds x 2 layers x 2 heads, same rows in the CSV and the JSON
    assert len(res.rows) == 12 and {r["sentences"] for r in res.rows} == {1}
    data = json.loads((tmp_path / "stats.json").read_text())
    assert len(data["rows"]) == 12 and data["columns"][4:13] == list(STAT_NAMES)
    assert len((tmp_path / "stats.csv").read_text().strip().split("\n")) == 13
    dec = [r for r in data["rows"] if r["kind"] == "dec_self"]
    assert all(r["next"] is None and r["diag_agree"] is None for r in dec)  # causal: no next key
    # target is the given reference; pieces on the axes: 7 source words + EOS, 7 target words
    assert res.sentence.tgt_origin == "reference" and res.sentence.tgt_text == TARGET
    html = (tmp_path / "report.html").read_text()
    assert html.count("<img ") == 12 and html.count("data:image/png;base64,") == 12
    assert "<table" in html and html.count("<tr>") == 13
    assert "http://" not in html and "https://" not in html
    assert TARGET in html and len(res.summaries) == 6


def test_selection_and_svg(ckpts, tmp_path):
    V.run(config(ckpts["a"], tmp_path, format="svg", kinds=["cross", "dec_self"], layers=[2], heads=[1]))
    names = sorted(p.name for p in tmp_path.glob("*.svg"))
    assert names == ["cross_L2.svg", "cross_L2_mean.svg", "dec_self_L2.svg", "dec_self_L2_mean.svg"]
    for name in names:
        assert ET.parse(tmp_path / name).getroot().tag.endswith("svg")
    rows = json.loads((tmp_path / "stats.json").read_text())["rows"]
    assert [(r["kind"], r["layer"], r["head"]) for r in rows] == [("dec_self", 2, 1), ("cross", 2, 1)]


def test_stats_match_pure_functions(ckpts, tmp_path):
    """Row values are attn_stats on the captured matrices (one sentence, no padding)."""
    res = V.run(config(ckpts["a"], tmp_path, kinds=["cross"]))
    loaded = load_model(ckpts["a"])
    src, tgt = loaded.src_tok.encode(SOURCE), loaded.tgt_tok.encode(TARGET)
    w = C.capture_sentence(loaded.model, src, tgt)["cross"][1]  # (H, T+1, S+1)
    assert w.shape[1:] == (len(tgt) + 1, len(src) + 1)
    ref = A.head_stats(w, A.valid_mask("cross", *w.shape[1:]), "cross")
    row = [r for r in res.rows if r["layer"] == 2 and r["head"] == 2][0]
    for name in ("entropy", "max_weight", "distance", "eos", "diag_agree"):
        assert row[name] == pytest.approx(float(ref[name][1]))


def test_compare_init_and_checkpoints(ckpts, tmp_path):
    cross = dict(kinds=["cross"])
    cfg = config(ckpts["a"], tmp_path / "cmp", compare=[ckpts["b"]], compare_init=True, seed=7, html=True, **cross)
    res = V.run(cfg)
    assert res.labels == ["init (seed 7)", "epoch1", "epoch10"]
    compare = sorted(p.name for p in (tmp_path / "cmp").glob("compare_*.png"))
    assert compare == ["compare_cross_L1.png", "compare_cross_L2.png"]
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert html.count("<img ") == 4 + 2 and "Comparison: init (seed 7) vs epoch1 vs epoch10" in html
    # "before training" = the architecture built after torch.manual_seed(seed): same maps as a
    # checkpoint saved from a model built that way
    ref = V.run(config(ckpts["init7"], tmp_path / "ref", **cross))
    init_rows = [r for r in res.rows if r["model"] == "init (seed 7)"]
    assert len(init_rows) == len(ref.rows) == 4
    for a, b in zip(init_rows, ref.rows):
        assert (a["kind"], a["layer"], a["head"]) == (b["kind"], b["layer"], b["head"])
        assert a["entropy"] == pytest.approx(b["entropy"]) and a["label"] == b["label"]
    epoch10 = [r for r in res.rows if r["model"] == "epoch10"]
    assert any(abs(a["entropy"] - b["entropy"]) > 1e-6 for a, b in zip(init_rows, epoch10))
    with pytest.raises(UserError, match="different architecture"):
        V.run(config(ckpts["a"], tmp_path / "bad", compare=[ckpts["noattn"]], **cross))


def test_translation_target_and_many_sentences(ckpts, tmp_path):
    lines = ["the cat runs", "a dog sees the house", "the red cat", "small dog"]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n")
    res = V.run(
        VisualizeConfig(
            path=ckpts["a"],
            input=str(path),
            index=1,
            beam=2,
            max_sentences=3,
            out=str(tmp_path / "o"),
            kinds=["cross"],
            dpi=30,
            device="cpu",
        )
    )
    assert res.sentence.src_text == lines[1] and res.sentence.tgt_origin == "translation (beam 2)"
    assert res.n_sentences == 3 and {r["sentences"] for r in res.rows} == {3}
    loaded = load_model(ckpts["a"])
    assert res.sentence.tgt == C.translate(loaded.model, loaded.src_tok.encode(lines[1]), 2, "cpu")


def test_long_sentence_is_cut_with_a_note(ckpts, tmp_path):
    long = " ".join(["the big cat"] * 30)  # 90 words
    res = V.run(
        config(
            ckpts["a"],
            tmp_path,
            source=long,
            target=long.replace("the", "le"),
            kinds=["cross"],
            layers=[1],
            max_pieces=40,
        )
    )
    assert "first 40 of 91 key pieces" in res.figures[0].caption
    assert res.rows[0]["entropy"] >= 0  # statistics still use every piece


def test_cross_attention_image(ckpts):
    loaded = load_model(ckpts["a"])
    loaded.model.train()
    img = V.cross_attention_image(loaded.model, loaded.src_tok, loaded.tgt_tok, SOURCE, "cpu")
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) > 50
    assert loaded.model.training  # mode restored
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 10  # a picture, not a blank canvas


def test_library_errors(ckpts, tmp_path):
    with pytest.raises(UserError, match="architecture lstm_seq2seq has no attention to visualize"):
        V.run(config(ckpts["noattn"], tmp_path))
    with pytest.raises(UserError, match="--layers 3 is out of range"):
        V.run(config(ckpts["a"], tmp_path, layers=[3]))
    with pytest.raises(UserError, match="exactly one of"):
        V.run(VisualizeConfig(path=ckpts["a"], out=str(tmp_path), device="cpu"))
    with pytest.raises(UserError):
        V.parse_int_list("0,2", "--heads")
    assert V.parse_int_list("1,3-4,3", "--layers") == [1, 3, 4]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--path", "missing.pt", "--source", "a"], "checkpoint not found"),
        (["--path", "{a}", "--input", "{txt}", "--index", "5"], "--index 5 is out of range"),
        (["--path", "{noattn}", "--source", "the cat"], "has no attention to visualize"),
    ],
)
def test_cli_errors_exit_2_with_one_line(ckpts, tmp_path, monkeypatch, capsys, args, message):
    txt = tmp_path / "two.txt"
    txt.write_text("the cat\na dog\n")
    argv = [a.format(txt=txt, **ckpts) for a in args]
    monkeypatch.setattr(sys, "argv", ["nmt", "visualize-attn", *argv, "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().split("\n")
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "o").exists()  # nothing written


def test_cli_success(ckpts, tmp_path, monkeypatch, capsys):
    out = tmp_path / "o"
    argv = [
        "nmt",
        "visualize-attn",
        "--path",
        ckpts["a"],
        "--source",
        SOURCE,
        "--target",
        TARGET,
        "--out",
        str(out),
        "--kinds",
        "cross",
        "--layers",
        "1",
        "--dpi",
        "30",
        "--device",
        "cpu",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "cross L1" in printed and "label" in printed
    assert sorted(p.name for p in out.iterdir()) == ["cross_L1.png", "cross_L1_mean.png", "stats.csv", "stats.json"]


def test_binarized_split_with_sentencepiece(toy_data_dir, tmp_path):
    """DATA_DIR --gen-subset test --index N: the split's reference is teacher-forced, axes show pieces."""
    meta = read_meta(str(toy_data_dir))
    ckpt = save_tiny(tmp_path / "sp.pt", meta=meta, blobs=read_blobs(str(toy_data_dir), meta))
    split = load_split(str(toy_data_dir), "test")
    cfg = VisualizeConfig(
        path=ckpt,
        data=str(toy_data_dir),
        gen_subset="test",
        index=3,
        max_sentences=4,
        kinds=["cross"],
        out=str(tmp_path / "o"),
        dpi=30,
        device="cpu",
    )
    res = V.run(cfg)
    assert res.sentence.src == split.src[3].tolist() and res.sentence.tgt == split.tgt[3].tolist()
    assert res.sentence.tgt_origin == "reference" and res.n_sentences == 4
    assert all(r["sentences"] == 4 for r in res.rows)
    with pytest.raises(UserError, match=f"--index {len(split)} is out of range"):
        V.run(dataclasses.replace(cfg, index=len(split)))
