"""Fonts for any script: the pure choice over a fake font list, the picker's one warning line, and
matplotlib's missing-glyph warnings (silenced only once reported)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from nmt.viz import figures as R
from nmt.viz import fonts as F

ASCII = {ord(c) for c in map(chr, range(32, 127))}
HANGUL = {ord(c) for c in "고양이가개를한국어"}
KANA = {ord(c) for c in "ねこがいぬカタ"}
HAN = {ord(c) for c in "中文猫狗"}
DEFAULT = F.FontFile("DejaVu Sans", "/fonts/DejaVuSans.ttf")
COVERAGE = {
    DEFAULT.path: ASCII | {ord("▁"), ord("é")},
    "/fonts/cjk.ttc": ASCII | HANGUL | KANA | HAN | {ord("▁"), ord("é")},
    "/fonts/cjk-bold.ttc": ASCII | HANGUL | KANA | HAN | {ord("▁"), ord("é")},
    "/fonts/serif-cjk.ttc": ASCII | HANGUL | KANA | HAN | {ord("▁"), ord("é")},
    "/fonts/kr.otf": ASCII | HANGUL | {ord("▁")},
    "/fonts/some-hangul.ttf": ASCII | {ord(c) for c in "▁고양이"},
}
CJK = [
    F.FontFile("Noto Serif CJK KR", "/fonts/serif-cjk.ttc"),
    F.FontFile("Noto Sans CJK KR", "/fonts/cjk-bold.ttc", regular=False),
    F.FontFile("Noto Sans CJK JP", "/fonts/cjk.ttc"),
    F.FontFile("Noto Sans CJK KR", "/fonts/cjk.ttc"),
    F.FontFile("Noto Sans CJK SC", "/fonts/cjk.ttc"),
]
OTHERS = [F.FontFile("Baekmuk", "/fonts/kr.otf"), F.FontFile("Partial", "/fonts/some-hangul.ttf")]


@pytest.fixture
def nmt_log(monkeypatch, caplog):
    """caplog sees the `nmt` loggers even after a training run in this process configured them."""
    monkeypatch.setattr(logging.getLogger("nmt"), "handlers", [])
    monkeypatch.setattr(logging.getLogger("nmt"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="nmt.viz"):
        yield caplog


def choose(text: str, fonts) -> F.FontChoice:
    return F.choose_font(F.drawn_chars([text]), DEFAULT, fonts, COVERAGE.__getitem__)


def test_default_font_is_kept_when_it_covers_everything() -> None:
    assert choose("▁the cat sees é </s>", CJK + OTHERS) == F.FontChoice(None, frozenset())


def test_noto_cjk_is_preferred_in_the_region_of_the_script() -> None:
    assert choose("▁고양이 가", CJK + OTHERS).font == F.FontFile("Noto Sans CJK KR", "/fonts/cjk.ttc")
    assert choose("▁ねこ が", CJK + OTHERS).font.name == "Noto Sans CJK JP"
    assert choose("▁中文", list(reversed(CJK))).font.name == "Noto Sans CJK SC"
    # without Noto: any font that covers every character, never one that covers only some
    assert choose("▁고양이 가", OTHERS) == F.FontChoice(OTHERS[0], frozenset())


def test_no_full_cover_takes_the_font_covering_most_and_names_the_rest() -> None:
    assert choose("▁고양이 ねこ", OTHERS) == F.FontChoice(OTHERS[0], frozenset("ねこ"))
    assert choose("▁고양이 ねこ", []) == F.FontChoice(None, frozenset("고양이ねこ"))
    assert choose("▁한국어", [OTHERS[1]]) == F.FontChoice(None, frozenset("한국어"))  # no better than the default


def test_scripts_are_named_from_unicode() -> None:
    got = {ch: F.script_of(ch) for ch in "한中かカبकéЖ"}
    assert got == {
        "한": "Hangul",
        "中": "Han",
        "か": "Hiragana/Katakana",
        "カ": "Hiragana/Katakana",
        "ب": "Arabic",
        "क": "Devanagari",
        "é": "Latin",
        "Ж": "Cyrillic",
    }
    assert F.drawn_chars(["a b\t", "\u200dc"]) == frozenset("abc")
    message = F.missing_message(set("한中"))
    assert "Han and Hangul characters" in message and "fonts-noto-cjk" in message and "\n" not in message


def test_picker_lists_fonts_only_when_needed_and_warns_once_per_script(nmt_log) -> None:
    picker = F.FontPicker(fonts=None, default=DEFAULT, coverage=COVERAGE.__getitem__)
    assert picker.choose(["▁cat", "</s>"]) == F.FontChoice(None, frozenset()) and picker.fonts is None
    picker.fonts = OTHERS[1:]
    for _ in range(3):
        assert picker.choose(["▁고양이", "가"]).missing == frozenset("가")
    picker.choose(["ب"])
    lines = [r.getMessage() for r in nmt_log.records if r.name == "nmt.viz"]
    assert len(lines) == 2 and "Hangul" in lines[0] and "Arabic" in lines[1]


def _render(labels: list[str], picker: F.FontPicker, silence: bool) -> list[str]:
    """Matplotlib's warnings while a fresh figure of `labels` is drawn (its text cache is per string)."""
    axes = R.Axes2D(labels, ["▁x", "</s>"], "source", "target")
    panel = R.PanelFigure(1, 1, axes, fonts=picker)
    panel.show([np.ones((2, len(labels)))], ["mean"], "cross-attention", 1.0)
    if not silence:
        panel.missing = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert panel.render("png", 20)[:4] == b"\x89PNG"
    return [str(w.message) for w in caught if "missing from" in str(w.message)]


def test_missing_glyphs_give_one_line_instead_of_matplotlibs_flood(nmt_log) -> None:
    picker = F.FontPicker(fonts=[])  # as on a machine with no font for Hangul
    assert len(_render(["▁퀵", "뷁", "</s>"], picker, silence=False)) >= 2  # what matplotlib alone says
    assert _render(["▁꿻", "뀱", "</s>"], picker, silence=True) == []
    lines = [r.getMessage() for r in nmt_log.records if r.name == "nmt.viz"]
    assert len(lines) == 1 and "Hangul" in lines[0]


def test_system_font_list_reads_real_files() -> None:
    fonts = F.system_fonts()
    default = F.default_font()
    assert default.name == "DejaVu Sans" and default.path in {f.path for f in fonts}
    assert ord("A") in F.font_coverage(default.path) and F.font_coverage("/no/such/font.ttf") == frozenset()
    assert F.FontPicker().choose(["▁the", "café", "</s>"]) == F.FontChoice(None, frozenset())
