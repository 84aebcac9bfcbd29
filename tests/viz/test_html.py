"""The HTML report writes every text, the pieces on the figures' axes included, as escaped HTML text."""

from __future__ import annotations

import html
from pathlib import Path
from types import SimpleNamespace

from nmt.viz.figures import Axes2D, Figure
from nmt.viz.html import write_html

SOURCE = ["▁고양이", "가", "▁<b>", "&", "</s>"]
TARGET = ["▁The", "▁cat", "▁sees", "</s>"]


def _result() -> SimpleNamespace:
    enc = Axes2D(SOURCE, SOURCE, "source (keys)", "source (queries)")
    cross = Axes2D(SOURCE, TARGET, "source", "target (predicted piece)")
    figures = [
        Figure("enc_self_L1", "enc_self", 1, "encoder self-attention, layer 1 (모델)", None, b"png", enc),
        Figure("cross_L1", "cross", 1, "cross-attention, layer 1 (모델)", None, b"png", cross),
        Figure("cross_L1_mean", "cross", 1, "cross-attention, layer 1: head average", None, b"png", cross),
    ]
    sentence = SimpleNamespace(src_text="고양이가 <b> & 개를 봐요.", tgt_text="The cat sees.", tgt_origin="reference")
    return SimpleNamespace(
        sentence=sentence,
        arch="transformer_tiny",
        labels=["모델"],
        summaries=["모델 cross L1: diagonal"],
        n_sentences=1,
        figures=figures,
        rows=[],
    )


def test_hangul_pieces_and_texts_are_escaped_text_in_the_report(tmp_path: Path) -> None:
    page = Path(write_html(str(tmp_path / "report.html"), _result())).read_bytes().decode("utf-8")
    assert '<meta charset="utf-8">' in page
    pieces = [line for line in page.splitlines() if line.startswith('<p class="pieces">')]
    # one line per distinct axis (name and pieces): the repeated cross-attention axes are left out
    assert [line.split("</b>")[0] for line in pieces] == [
        '<p class="pieces"><b>source (keys)',
        '<p class="pieces"><b>source (queries)',
        '<p class="pieces"><b>source',
        '<p class="pieces"><b>target (predicted piece)',
    ]
    expected = "<code>▁고양이</code> <code>가</code> <code>▁&lt;b&gt;</code> <code>&amp;</code> <code>&lt;/s&gt;</code>"
    assert pieces[0] == f'<p class="pieces"><b>source (keys)</b>: {expected}</p>'
    assert "<code>▁<b></code>" not in page and "<b> &" not in page  # no piece or text is read as markup
    assert html.escape("고양이가 <b> & 개를 봐요.") in page and "encoder self-attention, layer 1 (모델)" in page
    assert page.count("<img ") == 3
