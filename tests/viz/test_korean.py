"""A Korean model's attention figures: drawn in an installed font that has Hangul, with no missing
glyph. Skipped when no installed font has Hangul (Debian/Ubuntu: `apt-get install fonts-noto-cjk`)."""

from __future__ import annotations

import html
import warnings
from pathlib import Path

import pytest
from helpers import TINY_TRAIN, cli
from rich.console import Console

from nmt.checkpoint import load_model
from nmt.config import PreprocessConfig, ToyDataConfig
from nmt.data.preprocess import preprocess
from nmt.data.tokenizer import BOS, EOS
from nmt.data.toy_data import write_toy_data
from nmt.flags import parse_train_args
from nmt.training.loop import train
from nmt.viz.fonts import FontPicker, drawn_chars, font_coverage, script_of, system_fonts

SOURCE, TARGET = "제 작은 고양이가 그 개를 봐요.", "My small cat sees that dog."  # a pair of the toy grammar


@pytest.fixture(scope="module")
def korean_checkpoint(tmp_path_factory) -> str:
    if not any(ord("한") in font_coverage(f.path) for f in system_fonts()):
        pytest.skip("no installed font has Hangul (Debian/Ubuntu: apt-get install fonts-noto-cjk)")
    d = tmp_path_factory.mktemp("korean")
    write_toy_data(ToyDataConfig(out=str(d / "raw"), pairs=400, seed=1, pair="ko-en"))
    raw = d / "raw"
    cfg = PreprocessConfig(
        source_lang="ko",
        target_lang="en",
        trainpref=str(raw / "train"),
        validpref=str(raw / "valid"),
        destdir=str(d / "data-bin"),
        vocab_size=300,
        joined_dictionary=True,
    )
    preprocess(cfg, console=Console(quiet=True))
    args = [
        str(d / "data-bin"),
        "--save-dir",
        str(d / "ckpt"),
        *TINY_TRAIN,
        "--max-update",
        "3",
        "--log-format",
        "json",
    ]
    assert train(*parse_train_args(args)) == 0
    return str(d / "ckpt" / "checkpoint_last.pt")


def test_korean_figures_have_every_glyph(korean_checkpoint, tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "attn"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = cli(
            monkeypatch, capsys, "visualize-attn", "--path", korean_checkpoint, "--source", SOURCE, "--target", TARGET,
            "--out", str(out), "--dpi", "30", "--device", "cpu", "--html",
        )  # fmt: skip
    assert code == 0, err
    assert [str(w.message) for w in caught if "missing from" in str(w.message)] == []
    assert "no installed font" not in err and len(list(out.glob("*.png"))) == 6  # 3 kinds, 1 layer
    # the labels drawn: source pieces (Hangul) on the x axes, target pieces on the y axes
    loaded = load_model(korean_checkpoint, "cpu")
    src = loaded.src_tok.pieces(loaded.src_tok.encode(SOURCE) + [EOS])
    assert any(script_of(ch) == "Hangul" for piece in src for ch in piece)
    tgt = loaded.tgt_tok.pieces([BOS] + loaded.tgt_tok.encode(TARGET) + [EOS])
    choice = FontPicker().choose(src + tgt)
    assert choice.font is not None and choice.missing == frozenset()
    assert {ord(ch) for ch in drawn_chars(src + tgt)} <= font_coverage(choice.font.path)
    report = (out / "report.html").read_text(encoding="utf-8")
    assert all(f"<code>{html.escape(p)}</code>" in report for p in src)
